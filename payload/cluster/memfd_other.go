//go:build !amd64 && !arm64

package cluster

// sysMemfdCreate < 0: use an unlinked file in /dev/shm instead.
const sysMemfdCreate = -1
