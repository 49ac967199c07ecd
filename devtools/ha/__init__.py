"""The high-availability local stack (``paygo stack up --ha``, docs/operations.md): PostgreSQL under
Patroni over etcd, Redis under Sentinel, backups by pgBackRest. The engines do the work; this
package only writes their configuration, starts them on loopback and stops them."""
