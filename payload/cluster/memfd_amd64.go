package cluster

// sysMemfdCreate is memfd_create's number (missing from package syscall on amd64).
const sysMemfdCreate = 319
