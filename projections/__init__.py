"""Read models derived from the event log (audit trail, settlement, reminders); see issue 4."""
