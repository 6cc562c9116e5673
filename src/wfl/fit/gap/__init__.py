"""GAP fits with gap_fit: single (simple) and multistage."""
