"""Operations: probes, metrics endpoint, retention, backup, the audit-log reader."""
