# Pinned versions of the tools the project's scripts install. Sourced by the other scripts.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
TOOLS_DIR=${SWARMBACKUP_TOOLS_DIR:-/opt/swarmbackup-tools}
MINIO_BIN=$TOOLS_DIR/minio-$MINIO_VERSION
