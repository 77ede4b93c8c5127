# apt-clone: one command to set up and run the demo, one to set up and run the tests.
PY        ?= /usr/bin/python3
VENV      ?= .venv
SANDBOX   ?= /var/tmp/apt-clone-demo
STAMP      = $(VENV)/.installed

.PHONY: setup deps demo check test test-unit test-vm test-deb deb piuparts lint bench clean demo-clean \
        ansible-setup collection test-ansible

setup: deps $(STAMP)

deps:
	./scripts/install-debian-deps.sh

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PY) -m venv --system-site-packages $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: setup
	./scripts/demo.sh $(SANDBOX)

# SKIP_VM=1 skips the real OpenZFS lane (QEMU VMs; docs/testing.md gives its time, fresh and cached).
test: setup ansible-setup lint
	SKIP_VM=$(SKIP_VM) VENV=$(VENV) MAKE="$(MAKE)" ./scripts/test.sh

# The Ansible collection (ansible/): ansible-core pinned from PyPI in .venv-ansible, ansible-test's
# sanity environments primed in /var/cache/apt-clone-ansible (its tests then run offline);
# the collection built into dist/; its tests alone (three sandbox hosts; make test runs them too).
ansible-setup:
	./scripts/ansible-setup.sh

collection: ansible-setup
	.venv-ansible/bin/ansible-galaxy collection build ansible --output-path dist --force

test-ansible: setup ansible-setup
	$(VENV)/bin/python -m pytest -q tests/ansible

test-vm: setup
	$(VENV)/bin/python vm/lane.py

# The Debian package: built in a clean Debian 13 chroot and linted (deb: the host gets only
# debootstrap and dpkg-dev, never a ZFS, GRUB, kernel or initramfs package), then also installed by
# apt into another one and purged, and installed in a Debian 13 root on ZFS run as a booted host
# for the tests of what it installs (the APT hook: tests/package). Results in dist/.
deb:
	./scripts/install-debian-deps.sh deb
	$(PY) scripts/deb.py build

test-deb: setup
	$(PY) scripts/deb.py check
	$(VENV)/bin/python -m pytest -q tests/package

# piuparts on the .deb alone (install, remove, purge in a clean Debian 13, main and contrib);
# make test-deb runs it too.
piuparts:
	./scripts/install-debian-deps.sh deb
	$(PY) scripts/deb.py piuparts

# The developer's fast loop: ruff, mypy and the unit tests (no root, no ZFS; under a minute).
check: setup lint
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/unit

test-unit: setup
	$(VENV)/bin/python -m pytest -q tests/unit

lint: setup
	$(VENV)/bin/ruff check apt_clone tests bench vm scripts
	$(VENV)/bin/ruff format --check apt_clone tests bench vm scripts
	$(VENV)/bin/mypy

bench: setup
	$(VENV)/bin/python -m bench.run --readme

demo-clean: setup
	$(VENV)/bin/python -m tests.sandbox destroy --dir $(SANDBOX) || true

clean:
	rm -rf $(VENV) .venv-ansible .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
