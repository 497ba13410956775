#!/usr/bin/env bash
# Builds the PostgreSQL image the container tests and `seqmig rehearse --image` use when no
# image registry is reachable: a Debian bookworm root filesystem with postgresql-15 made by
# debootstrap, imported into Docker. Skips the build when the image already exists.
#
#   .ci/docker-image.sh [TAG]        (default seqmig/postgres:15; needs root and a running dockerd)
#
# The image follows the official postgres image's conventions where seqmig relies on them:
# the command is `postgres [-c name=value ...]`, POSTGRES_HOST_AUTH_METHOD=trust is honoured
# (and is the only method it knows), PGPORT sets the port, the superuser is `postgres`.
set -euo pipefail
tag="${1:-seqmig/postgres:15}"
if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "image $tag present"
  exit 0
fi
command -v debootstrap >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
}
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
root="$(mktemp -d /tmp/seqmig-rootfs.XXXXXX)"
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=postgresql-15 bookworm "$root" "$mirror" >"$root.log" 2>&1 \
  || { tail -30 "$root.log"; exit 1; }
rm -f "$root.log"
# The package's own cluster (main) is not used; the entrypoint makes a fresh one per container.
rm -rf "$root"/var/lib/postgresql/15 "$root"/etc/postgresql/15 \
  "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc "$root"/usr/share/man
cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'SH'
#!/bin/sh
# initdb on first start (as postgres, trust authentication), then run the server in the
# foreground. Arguments are the server's: `postgres -c port=5433 ...` or just `-c ...`.
set -e
[ "$1" = postgres ] && shift
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  exec runuser -u postgres -- "$0" postgres "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  /usr/lib/postgresql/15/bin/initdb -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C --no-sync >/dev/null
fi
exec /usr/lib/postgresql/15/bin/postgres -D "$PGDATA" "$@"
SH
chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"
tar -C "$root" -c . | docker import \
  --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
  --change 'CMD ["postgres"]' \
  --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV PGDATA=/var/lib/postgresql/data' \
  - "$tag" >/dev/null
echo "image $tag built"
