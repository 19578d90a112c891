"""Sources as data: kept in the compacted sources topic with their secrets encrypted,
followed live by every ingress replica and worker, changed through the admin API."""
