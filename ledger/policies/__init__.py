"""Policies: the rule set document and the pure computations it drives (the valuation of a sale,
tiers, lots and their expiry dates, chain time, the as-of fold). No state, no I/O."""
