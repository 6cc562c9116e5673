from ase.calculators.emt import EMT as Vasp

from wfl.configset import ConfigSet, OutputSpec
from wfl.generate_configs.minim import run as minim_run

ci = ConfigSet("structures.xyz")
co = OutputSpec("relaxed.structures.xyz")
ci_relaxed = minim_run(ci, co, calculator=(Vasp, [], {}), pressure=0.0)
