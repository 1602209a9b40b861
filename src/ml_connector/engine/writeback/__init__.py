"""Write-back flow (Jira → IFS), DESIGN §4.2 and §4.3, one job a module.

Changes come from JQL polling (``updated >=`` a time-zone-safe bound, overlap deduped by comparing the status with
the last one written) or from the webhook inbox (``detect``, ``changes``, ``inbox``). Order, not arrival: a change is
accepted only when it is newer than the newest one the store accepted for the issue (the issue's ``updated``, then
the changelog id); older or equal deliveries are audited ``stale`` and dropped (``order``). The accepted status is
durable before IFS is written (``outcomes``), so a write that fails is retried from the store (with backoff) even
after the poll moved on. For each linked issue whose status differs from what IFS last got: map it (``plan``), read
ETags for the whole batch in one filtered request, PATCH with ``If-Match``; on 412 read again and re-apply, a
bounded number of times (``ifs_write``). Never ``If-Match: *``. ``sync`` runs it all under one applier lease
(``lease``).
"""
