# The README's two Quickstart commands: `make demo` and `make test`.
# Both install what is missing (scripts/setup.sh), build the CPU engine with
# Ninja + ccache, and run.
PRESET ?= cpu
BUILD_DIR := build
JOBS ?= $(shell nproc)

.PHONY: setup build demo test cuda-check asan clean

setup:
	bash scripts/setup.sh

build: setup
	cmake --preset $(PRESET) >/dev/null
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: build
	bash scripts/demo.sh

# The CUDA check runs first so that the log ends with the CPU suite's verdict
# (the GPU tests only report "skipped" here).
test: setup
	$(MAKE) cuda-check
	$(MAKE) build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# Where nvcc exists (CI has it, no GPU), the CUDA backend must keep compiling and
# linking; its tests (label gpu) then report "skipped" without a device. They run
# on the GPU machine: scripts/gpu/bundle.sh here, scripts/gpu/run_tests.sh there.
cuda-check: setup
	@if [ -x /usr/local/cuda/bin/nvcc ]; then \
	  cmake --preset cuda >/dev/null && cmake --build build-cuda -j $(JOBS) && \
	  cd build-cuda && ctest -L gpu --output-on-failure -j $(JOBS); \
	else echo "no nvcc: the CUDA backend is not compiled"; fi

# The whole suite under ASan + UBSan.
asan: setup
	cmake --preset asan >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

clean:
	rm -rf build build-asan build-cuda
