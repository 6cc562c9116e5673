#!/bin/bash
#LOCAL --job-name=vasp_minim_chunk_3_4fab6f4b7f
#LOCAL --partition=local
#LOCAL --capacity=2
#LOCAL --cores=2
#LOCAL --time=86400
#LOCAL --stdout=/work/wt/plan/.pytest-tmp-readme/test_readme_snippets_run0/home/.expyre/stage/vasp_minim_chunk_3_4fab6f4b7f/_expyre_job.stdout
#LOCAL --stderr=/work/wt/plan/.pytest-tmp-readme/test_readme_snippets_run0/home/.expyre/stage/vasp_minim_chunk_3_4fab6f4b7f/_expyre_job.stderr
# expyre job vasp_minim_chunk_3_4fab6f4b7f (generated; edits are overwritten)
cd /work/wt/plan/.pytest-tmp-readme/test_readme_snippets_run0/home/.expyre/stage/vasp_minim_chunk_3_4fab6f4b7f || exit 97
export EXPYRE_JOB_ID=vasp_minim_chunk_3_4fab6f4b7f
export EXPYRE_NUM_NODES=1
export EXPYRE_NUM_CORES=2
export EXPYRE_NUM_CORES_PER_NODE=2
export EXPYRE_NCORES_PER_NODE=2
export VASP_COMMAND="/path/to/vasp"
export VASP_PP_PATH="POTCARs"
export WFL_VASP_KWARGS="{\"ncore\": ${EXPYRE_NCORES_PER_NODE}}"
export WFL_NUM_PYTHON_SUBPROCESSES="${EXPYRE_NUM_CORES_PER_NODE}"
/work/wt/plan/.venv/bin/python3 -m expyre.runner /work/wt/plan/.pytest-tmp-readme/test_readme_snippets_run0/home/.expyre/stage/vasp_minim_chunk_3_4fab6f4b7f
expyre_exit_code=$?
exit $expyre_exit_code
