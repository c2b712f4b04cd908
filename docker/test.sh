#!/usr/bin/env bash
# Build Arbor's image and talk to a container of it with psql: health check,
# a write and a read back, and the data surviving a container restart (the
# volume). Needs a Docker daemon that can pull the base images; without
# one it says so and exits 0 (CI runs it where Docker is available).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
  echo "docker/test.sh: no Docker daemon here; skipped" >&2
  exit 0
fi

image=arbor:test
name=arbor-test-$$
volume=arbor-test-data-$$
cleanup() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker volume rm "$volume" >/dev/null 2>&1 || true
}
trap cleanup EXIT

docker build -q -f docker/Dockerfile -t "$image" . >/dev/null

wait_healthy() {
  for _ in $(seq 1 60); do
    status=$(docker inspect --format '{{.State.Health.Status}}' "$name")
    [ "$status" = healthy ] && return 0
    sleep 1
  done
  docker logs "$name" >&2
  echo "docker/test.sh: container never became healthy" >&2
  return 1
}

psql_in() {
  docker exec -e PGPASSWORD=root "$name" psql -X -q -A -t -h 127.0.0.1 -p 6667 -U root -d arbor -v ON_ERROR_STOP=1 -c "$1"
}

docker run -d --name "$name" -v "$volume":/var/lib/arbor "$image" >/dev/null
wait_healthy
[ "$(docker exec "$name" id -un)" = arbor ] || { echo "docker/test.sh: not running as the arbor user" >&2; exit 1; }
psql_in "INSERT INTO root.docker.d1(timestamp, temperature) VALUES (1000, 20.5), (2000, 21.5)"
got=$(psql_in 'SELECT count(temperature), max(temperature) FROM "root.docker.d1"')
[ "$got" = "2|21.5" ] || { echo "docker/test.sh: expected 2|21.5, got $got" >&2; exit 1; }

docker restart "$name" >/dev/null
wait_healthy
got=$(psql_in 'SELECT count(temperature) FROM "root.docker.d1"')
[ "$got" = "2" ] || { echo "docker/test.sh: after restart expected 2 rows, got $got" >&2; exit 1; }
echo "docker/test.sh: image built, healthy, psql round trip and restart passed"
