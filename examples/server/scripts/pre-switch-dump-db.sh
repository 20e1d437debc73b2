#!/bin/sh
# pre_switch: dump the database before services restart, so a bad
# generation can be rolled back with the data it knew.
set -e
mkdir -p /var/backups/postgres
su postgres -c "pg_dumpall" | gzip > "/var/backups/postgres/pre-switch-$(date +%Y%m%dT%H%M%S).sql.gz"
