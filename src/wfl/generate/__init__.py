"""Operations that generate new configurations (relaxations, molecular dynamics, AIRSS buildcell)."""
