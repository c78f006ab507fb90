"""Queue-health reports, recurring-issue spikes and repeat-contact facts, from the mirror and the audit log.

Pure metrics live in `metrics`, `sla_stats`, `spikes`; `history` keeps the
ticket transitions the mirror forgets; `source` is the thin adapter over the
state store; `render`, `chart` and `slack` present a `Report`. Importing this
package stays cheap (the rules engine imports `text` through the requester fields).
"""
