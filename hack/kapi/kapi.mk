# hack/kapi/kapi.mk: included by the root Makefile.
#
#   make kapi       build (or reuse) kube-apiserver v1.37.2 and etcd for the integration tests
#                   (about 11 minutes cold, a no-op when cached; see hack/kapi/build.sh)
#   make kapi-up    start a throwaway etcd + kube-apiserver (state in $KAPI_DIR,
#                   default /var/tmp/ravel-kapi); then: eval "$$(hack/kapi/kapi.sh env)"
#   make kapi-down  stop them
KAPI_HACK_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

.PHONY: kapi kapi-up kapi-down
kapi:
	bash $(KAPI_HACK_DIR)/build.sh

kapi-up: kapi
	bash $(KAPI_HACK_DIR)/kapi.sh up

kapi-down:
	bash $(KAPI_HACK_DIR)/kapi.sh down
