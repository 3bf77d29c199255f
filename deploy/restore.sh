#!/bin/sh
# Restore a dump made by backup.sh into ADAPTER_DATABASE_URL, replacing what is there.
#   deploy/restore.sh /var/backups/hospital-adapter/adapter-20261203T023000Z.dump
# Stop every adapter process first (systemctl stop hospital-adapter.target), then after the
# restore run `hospital-adapter db upgrade` (a dump from an older release) and start them again.
# The data key file in use when the dump was made must still be in ADAPTER_DATA_KEY_FILE.
set -eu

file="${1:?usage: restore.sh BACKUP_FILE}"
url="${ADAPTER_DATABASE_URL:?ADAPTER_DATABASE_URL is not set}"
[ -r "$file" ] || { echo "restore.sh: cannot read $file" >&2; exit 2; }
case "$url" in
    postgresql*) ;;
    *) echo "restore.sh: ADAPTER_DATABASE_URL is not PostgreSQL" >&2; exit 2 ;;
esac
pgurl=$(printf '%s' "$url" | sed 's|^postgresql+[A-Za-z0-9_]*://|postgresql://|')

# One transaction: a restore that fails half-way leaves the database as it was.
pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction --exit-on-error \
    --dbname="$pgurl" "$file"
echo "restored: $file; next: hospital-adapter db upgrade, then start the adapter"
