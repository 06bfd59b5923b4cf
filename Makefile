# The README's two Quickstart commands: `make demo` and `make test`.
# Both install what is missing (scripts/setup.sh), build the CPU engine with
# Ninja + ccache, and run.
PRESET ?= cpu
BUILD_DIR := build
JOBS ?= $(shell nproc)

.PHONY: setup build demo test asan clean

setup:
	bash scripts/setup.sh

build: setup
	cmake --preset $(PRESET) >/dev/null
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	bash scripts/demo.sh

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# The whole suite under ASan + UBSan.
asan: setup
	cmake --preset asan >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf build build-asan build-cuda
