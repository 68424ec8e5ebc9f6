"""Reports and dashboards (SPEC T6, M)."""
