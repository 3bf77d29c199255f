#!/bin/sh
# Back up the adapter's PostgreSQL database: one custom-format pg_dump, kept for N days.
#   ADAPTER_DATABASE_URL       the adapter's database (the SQLAlchemy URL the adapter uses)
#   ADAPTER_BACKUP_DIR         where dumps go (default /var/backups/hospital-adapter)
#   ADAPTER_BACKUP_KEEP_DAYS   dumps older than this are deleted (default 14)
# Personal data in the dump stays encrypted under the data key; the key file is NOT in the dump
# and must be backed up apart from it (docs/install.md), or the dump cannot be read after a loss.
set -eu

url="${ADAPTER_DATABASE_URL:?ADAPTER_DATABASE_URL is not set}"
dir="${ADAPTER_BACKUP_DIR:-/var/backups/hospital-adapter}"
keep="${ADAPTER_BACKUP_KEEP_DAYS:-14}"

case "$url" in
    postgresql*) ;;
    *) echo "backup.sh: ADAPTER_DATABASE_URL is not PostgreSQL; copy the SQLite file while the adapter is stopped" >&2
       exit 2 ;;
esac
case "$keep" in
    ''|*[!0-9]*) echo "backup.sh: ADAPTER_BACKUP_KEEP_DAYS must be a whole number of days" >&2; exit 2 ;;
esac
# libpq does not know SQLAlchemy's driver suffix (postgresql+psycopg://).
pgurl=$(printf '%s' "$url" | sed 's|^postgresql+[A-Za-z0-9_]*://|postgresql://|')

umask 077
mkdir -p "$dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
partial="$dir/.adapter-$stamp.dump.partial"
trap 'rm -f "$partial"' EXIT
pg_dump --format=custom --no-owner --no-privileges --dbname="$pgurl" --file="$partial"
# Renamed only when complete: a dump cut off half-way never looks like a backup.
mv "$partial" "$dir/adapter-$stamp.dump"
find "$dir" -maxdepth 1 -type f -name 'adapter-*.dump' -mtime +"$keep" -delete
echo "backup: $dir/adapter-$stamp.dump"
