# shape_router — PGXS build of the extension, plus the core's unit tests.
#
#   make && make install      build and install the extension (as root)
#   make installcheck         pg_regress suite on a throwaway instance (as postgres)
#   make unit                 core unit tests, also under ASan + UBSan
#
# Everything a fresh machine needs is installed by scripts/test.sh and scripts/demo.sh.

MODULE_big = shape_router
EXTENSION = shape_router
DATA = shape_router--0.1.sql
PGFILEDESC = "shape_router - route decoded changes to registered shapes"

CORE_SRCS = $(sort $(wildcard src/core/*.cpp))
SHELL_SRCS = $(sort $(wildcard src/pg/*.c))
OBJS = $(CORE_SRCS:.cpp=.o) $(SHELL_SRCS:.c=.o)

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
# TEST_OUTPUT: where pg_regress writes (results, diffs, the temporary instance), so
# the suite can run as the postgres user over a source tree it cannot write.
TEST_OUTPUT ?= .
REGRESS_OPTS = --temp-instance=$(TEST_OUTPUT)/tmp_check --temp-config=$(TEST_OUTPUT)/logical.conf \
	--outputdir=$(TEST_OUTPUT) --load-extension=shape_router --encoding=UTF8 --no-locale
# Isolation specs (specs/*.spec): concurrent sessions, on their own throwaway instance.
ISOLATION = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))
ISOLATION_OPTS = --temp-instance=$(TEST_OUTPUT)/tmp_check_iso --temp-config=$(TEST_OUTPUT)/logical.conf \
	--outputdir=$(TEST_OUTPUT)/isolation --load-extension=shape_router --encoding=UTF8 --no-locale
EXTRA_CLEAN = logical.conf tmp_check tmp_check_iso isolation results regression.diffs regression.out log test/unit/bin

# Entry points must stay visible while everything else is hidden.
EXPORT_FLAGS = -fvisibility=hidden '-DPGDLLEXPORT=__attribute__((visibility("default")))'
PG_CPPFLAGS = -I$(srcdir)/include $(EXPORT_FLAGS)
# Link-time optimisation: the shell's calls into the core (a row's keys, the
# route) are inlined across the C/C++ boundary (routing 4% less CPU at a
# million shapes; bench/README.md). `make LTO_FLAGS=` builds without it.
LTO_FLAGS ?= -flto=auto
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers $(LTO_FLAGS)
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Werror $(LTO_FLAGS)
SHLIB_LINK += -lstdc++ -lxxhash

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies here; every object depends on all headers.
$(OBJS): $(wildcard src/pg/*.h src/core/*.hpp include/shape_router/*)

# PGXS builds LLVM bitcode of every source with its own flags.
COMPILE.cxx.bc += -std=c++17 -Wno-register -I$(srcdir)/include
COMPILE.c.bc += -I$(srcdir)/include

# The test instance's config. Servers from 15.19 on decode only with plugins
# listed in output_plugin_libraries; older ones do not know that setting.
$(TEST_OUTPUT)/logical.conf: logical.conf.in
	mkdir -p $(TEST_OUTPUT)
	cp $< $@
	if $(shell $(PG_CONFIG) --bindir)/postgres --describe-config 2>/dev/null | grep -q '^output_plugin_libraries'; then \
	  echo "output_plugin_libraries = 'pgoutput, test_decoding, shape_router'" >> $@; fi
installcheck: $(TEST_OUTPUT)/logical.conf

# ---- core unit tests (GoogleTest), plain and with sanitizers ----
UNIT_TESTS = $(patsubst test/unit/%.cpp,%,$(sort $(wildcard test/unit/*_test.cpp)))
UNIT_CXXFLAGS = -std=c++17 -Wall -Wextra -Werror -g -I$(srcdir)/include
SANITIZE = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

# The core is compiled once per flavour (plain, ASan + UBSan, TSan) and linked into each test.
CORE_HEADERS = $(wildcard include/shape_router/* src/core/*.hpp)
TEST_HEADERS = $(wildcard test/unit/*.hpp)
UNIT_CORE = $(patsubst src/core/%.cpp,test/unit/bin/core/%.o,$(CORE_SRCS))
UNIT_CORE_ASAN = $(patsubst src/core/%.cpp,test/unit/bin/core/%.asan.o,$(CORE_SRCS))
UNIT_CORE_TSAN = $(patsubst src/core/%.cpp,test/unit/bin/core/%.tsan.o,$(CORE_SRCS))

test/unit/bin/core/%.o: src/core/%.cpp $(CORE_HEADERS)
	@mkdir -p test/unit/bin/core
	$(CXX) $(UNIT_CXXFLAGS) -O2 -c -o $@ $<

test/unit/bin/core/%.asan.o: src/core/%.cpp $(CORE_HEADERS)
	@mkdir -p test/unit/bin/core
	$(CXX) $(UNIT_CXXFLAGS) -O1 $(SANITIZE) -c -o $@ $<

test/unit/bin/core/%.tsan.o: src/core/%.cpp $(CORE_HEADERS)
	@mkdir -p test/unit/bin/core
	$(CXX) $(UNIT_CXXFLAGS) -O1 -fsanitize=thread -c -o $@ $<

test/unit/bin/%: test/unit/%.cpp $(UNIT_CORE) $(CORE_HEADERS) $(TEST_HEADERS)
	$(CXX) $(UNIT_CXXFLAGS) -O2 -o $@ $< $(UNIT_CORE) -lgtest -lgtest_main -lpthread -lxxhash

test/unit/bin/%.asan: test/unit/%.cpp $(UNIT_CORE_ASAN) $(CORE_HEADERS) $(TEST_HEADERS)
	$(CXX) $(UNIT_CXXFLAGS) -O1 $(SANITIZE) -o $@ $< $(UNIT_CORE_ASAN) -lgtest -lgtest_main -lpthread -lxxhash

# The background rebuild thread under ThreadSanitizer (the tests that start one).
test/unit/bin/%.tsan: test/unit/%.cpp $(UNIT_CORE_TSAN) $(CORE_HEADERS) $(TEST_HEADERS)
	$(CXX) $(UNIT_CXXFLAGS) -O1 -fsanitize=thread -o $@ $< $(UNIT_CORE_TSAN) -lgtest -lgtest_main -lpthread -lxxhash

# ---- micro-benchmarks of the core (Google Benchmark); see bench/README.md ----
BENCHES = $(patsubst bench/%.cpp,%,$(sort $(wildcard bench/*_bench.cpp)))

bench/bin/%: bench/%.cpp $(CORE_SRCS) $(CORE_HEADERS)
	@mkdir -p bench/bin
	$(CXX) -std=c++17 -Wall -Wextra -Werror -O2 -DNDEBUG -I$(srcdir)/include -o $@ $< $(CORE_SRCS) -lbenchmark -lpthread -lxxhash $(shell pkg-config --libs absl_flat_hash_map 2>/dev/null)

.PHONY: bench
bench: $(addprefix bench/bin/,$(BENCHES)) bench/bin/router_memory
	@set -e; for b in $(filter %_bench,$^); do echo "== $$b"; $$b --benchmark_min_time=0.2 $(BENCH_ARGS); done
	@echo "== bench/bin/router_memory"; bench/bin/router_memory 1000000 28

.PHONY: unit
unit: $(addprefix test/unit/bin/,$(UNIT_TESTS)) $(addprefix test/unit/bin/,$(addsuffix .asan,$(UNIT_TESTS))) test/unit/bin/shape_index_test.tsan test/unit/bin/range_index_test.tsan
	@set -e; for t in $(filter-out %.tsan,$^); do echo "== $$t"; $$t --gtest_brief=1; done
	@echo "== test/unit/bin/shape_index_test.tsan (background builds)"; \
	  test/unit/bin/shape_index_test.tsan --gtest_brief=1 --gtest_filter='*Background*:*LargeOverlay*'
	@echo "== test/unit/bin/range_index_test.tsan (background builds)"; \
	  test/unit/bin/range_index_test.tsan --gtest_brief=1 --gtest_filter='*Background*'

