// Package manifests holds no code: its tests validate what a user deploys
// (docker-compose files, the Dockerfile, the kustomize overlays) without a
// container engine or a cluster.
package manifests
