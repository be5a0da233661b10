# Pinned versions of the tools the project's scripts install. Sourced by the other scripts.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
TOOLS_DIR=${SWARMBACKUP_TOOLS_DIR:-/opt/swarmbackup-tools}
MINIO_BIN=$TOOLS_DIR/minio-$MINIO_VERSION
RESTIC_VERSION=v0.18.1
KOPIA_VERSION=v0.22.3
RESTIC_BIN=$TOOLS_DIR/restic-$RESTIC_VERSION
KOPIA_BIN=$TOOLS_DIR/kopia-$KOPIA_VERSION
