"""Small data shipped with udl (no downloads at run time)."""
