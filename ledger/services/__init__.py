"""Services by concern on one core (`core.py`): each command loads, lets the domain decide, and
saves; `once.py` makes numbered commands idempotent. `ledger.application` composes them."""
