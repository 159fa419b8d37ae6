"""The gateway's store: tables, the job state machine, the payment ledger, media."""
