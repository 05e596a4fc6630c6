"""The tamper-evident audit trail and the disclosure log (issue 6)."""
