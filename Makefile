# Thin wrapper: everything real is in meson.build and t/run-tests.
# `make run` and `make test` work on a fresh Debian 12 machine as root.

DEB_PACKAGES := gcc meson ninja-build pkg-config libluajit-5.1-dev luajit libev-dev check \
	libssl-dev lua-busted lua-cjson python3 clang postgresql libpq-dev
BUILD := build
BUILD_ASAN := build-asan

.PHONY: all deps build build-asan run test bench fuzz format clean

all: build

# Installs only what is missing; silent when everything is there.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run make as root)"; exit 1; fi; \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) >/dev/null
	@ninja -C $(BUILD)

build-asan: deps
	@[ -f $(BUILD_ASAN)/build.ninja ] || meson setup $(BUILD_ASAN) -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@ninja -C $(BUILD_ASAN)

run: build
	./$(BUILD)/ksrd -f conf/ksrd.lua -E

test: build build-asan
	@t/run-tests $(BUILD) $(BUILD_ASAN)

bench: build
	@t/bench/run $(BUILD)

fuzz: deps
	@[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	@ninja -C build-fuzz
	@t/fuzz/run build-fuzz $${FUZZ_SECONDS:-60}

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) build-fuzz
