"""Consistency checks of the deployment files, in place of `bicep build` (not installable here).

Parsed with pycep. Checks that module calls match the modules' parameters, that the azd parameter
file, the hooks and main.bicep's outputs agree, that the handler gets the settings of
docs/settings.md (and none of the forbidden ones), and the wire facts of the Event Grid subscription,
the pool and the role assignments.

Run with the interpreter of scripts/check-infra's virtual environment:
    .venv-infra/bin/python -m unittest discover -s tests/infra -v
"""

from __future__ import annotations

import json
import os
import re
import unittest
from pathlib import Path

import yaml
from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
PARSER = BicepParser()

ROLE = {
    "job_submitter": "48e5e92e-a480-4e71-aa9c-2778f4c13781",
    "blob_reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "blob_contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "acr_pull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "batch_account_reader": "11076f67-66f6-4be0-8f6b-f0609fd05cc9",
    "blob_delegator": "db58b8e5-c6ad-4a2a-8342-4190687cbf4a",
}

HANDLER_SETTINGS = {
    "STORAGE_ACCOUNT_URL", "INPUT_CONTAINER", "OUTPUT_CONTAINER", "RUNNER", "BATCH_ACCOUNT_URL",
    "BATCH_ACCOUNT_NAME", "BATCH_POOL_ID", "BATCH_JOB_ID", "BATCH_NODE_IDENTITY", "WORDCOUNT_IMAGE",
    "RUST_LOG", "TASK_MAX_WALL_CLOCK_TIME", "TASK_MAX_RETRY_COUNT",
    "TASK_RETENTION_TIME", "TASK_MAX_QUEUE_TIME",
    "RECONCILE_SCHEDULE", "RECONCILE_LOOKBACK", "RECONCILE_GRACE", "DEADLETTER_CONTAINER",
    "STAGING_CONTAINER",
}
# Job mode (BATCH_SUBMIT_MODE=job, an auto pool per blob) needs STORAGE_ACCOUNT_KEY and an image
# pulled without the pool identity; neither exists in these templates (docs/deploy.md).
JOB_MODE_SETTINGS = {"BATCH_SUBMIT_MODE", "BATCH_AUTO_POOL_VM_SIZE", "BATCH_AUTO_POOL_LOW_PRIORITY"}
FORBIDDEN_SETTINGS = {
    "STORAGE_ACCOUNT_KEY", "BATCH_ACCOUNT_KEY", "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_CUSTOMHANDLER_PORT",
    "AzureWebJobsStorage",  # a connection string; the identity-based form uses AzureWebJobsStorage__*
} | JOB_MODE_SETTINGS


def parse(rel: str) -> dict:
    return PARSER.parse(text=(ROOT / rel).read_text())


def text(rel: str) -> str:
    return (ROOT / rel).read_text()


def strings(node) -> list[str]:
    """Every string anywhere in a parsed node."""
    out: list[str] = []
    if isinstance(node, str):
        out.append(node)
    elif isinstance(node, dict):
        for v in node.values():
            out.extend(strings(v))
    elif isinstance(node, list):
        for v in node:
            out.extend(strings(v))
    return out


def keys(node) -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(k)
            out |= keys(v)
    elif isinstance(node, list):
        for v in node:
            out |= keys(v)
    return out


def code_lines(path: Path) -> list[str]:
    """The lines of a Bicep, JSON, YAML or shell file without its comments (// and #)."""
    marker = "//" if path.suffix == ".bicep" else "#"
    out = []
    for line in path.read_text().splitlines():
        if line.strip().startswith(marker):
            continue
        out.append(re.sub(r"\s" + re.escape(marker) + r"\s.*$", "", line))
    return out


def deployment_files() -> list[Path]:
    return sorted([*INFRA.rglob("*.bicep"), INFRA / "main.parameters.json", *(INFRA / "hooks").iterdir(),
                   ROOT / "azure.yaml"])


def role_assignments(parsed: dict) -> list[tuple[str, str]]:
    """(scope symbol, role variable name) of every role assignment in a parsed file."""
    found = []
    for res in parsed["resources"].values():
        cfg = res["config"]
        if not res["type"] == "Microsoft.Authorization/roleAssignments":
            continue
        role_strings = strings(cfg["properties"]["roleDefinitionId"])
        found.append((cfg["scope"], role_strings))
    return found


def grants(rel: str) -> list[dict]:
    """Every role assignment in a Bicep file: symbol, scope, role variable, principal, condition."""
    found = []
    for symbol, res in parse(rel)["resources"].items():
        if res["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        cfg = res["config"]
        condition = cfg.get("condition")
        if condition is not None:  # `= if (...) {...}`: pycep nests the body one level deeper
            cfg = cfg["config"]
        role = cfg["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        found.append({"symbol": symbol, "scope": cfg["scope"], "role": role,
                      "principal": cfg["properties"]["principalId"], "condition": condition})
    return found


MODULES = sorted(str(p.relative_to(ROOT)) for p in (INFRA / "modules").glob("*.bicep"))


class ModuleCalls(unittest.TestCase):
    def test_module_params_match(self):
        main = parse("infra/main.bicep")
        for name, module in main["modules"].items():
            path = INFRA / module["detail"]["path"]
            self.assertTrue(path.is_file(), f"module {name}: {path} missing")
            declared = PARSER.parse(text=path.read_text())["parameters"]
            given = set(module["config"]["params"].keys())
            unknown = given - set(declared)
            self.assertFalse(unknown, f"module {name} passes unknown params {unknown}")
            required = {p for p, d in declared.items() if d.get("default") is None}
            missing = required - given
            self.assertFalse(missing, f"module {name} lacks required params {missing}")

    def test_module_outputs_exist(self):
        main_text = text("infra/main.bicep")
        main = parse("infra/main.bicep")
        for name, module in main["modules"].items():
            outputs = PARSER.parse(text=(INFRA / module["detail"]["path"]).read_text()).get("outputs", {})
            for used in re.findall(rf"\b{name}\.outputs\.(\w+)", main_text):
                self.assertIn(used, outputs, f"main.bicep uses {name}.outputs.{used}, not declared")

    def test_parameters_file(self):
        params = json.loads(text("infra/main.parameters.json"))["parameters"]
        declared = parse("infra/main.bicep")["parameters"]
        self.assertFalse(set(params) - set(declared), "main.parameters.json names unknown parameters")

    def test_subscription_template_params_given_by_hook(self):
        declared = parse("infra/subscription.bicep")["parameters"]
        hook = text("infra/hooks/deploy")
        block = hook[hook.index("--template-file infra/subscription.bicep"):]
        given = set(re.findall(r"^\s+(\w+)=", block, re.M))
        self.assertFalse(given - set(declared), f"hook passes unknown params {given - set(declared)}")
        required = {p for p, d in declared.items() if d.get("default") is None}
        self.assertFalse(required - given, f"hook lacks required params {required - given}")


class Azd(unittest.TestCase):
    def test_hooks_exist(self):
        spec = yaml.safe_load(text("azure.yaml"))
        self.assertEqual(spec["infra"], {"provider": "bicep", "path": "infra", "module": "main"})
        for name, hook in spec["hooks"].items():
            run = hook["posix"]["run"]
            script = run.split()[-1]
            self.assertTrue((ROOT / script).is_file(), f"hook {name}: {script} missing")
            self.assertTrue(os.access(ROOT / script, os.X_OK), f"hook {name}: {script} not executable")
        self.assertEqual(set(spec["hooks"]), {"preprovision", "postprovision"})

    def test_hook_environment_is_provided_by_outputs(self):
        outputs = set(parse("infra/main.bicep")["outputs"])
        hook = text("infra/hooks/deploy")
        match = re.search(r"^need ((?:[^\n]*\\\n)*[^\n]*)$", hook, re.M)
        needed = match.group(1).replace("\\\n", " ").split()
        self.assertTrue(needed)
        self.assertFalse(set(needed) - outputs, f"hook needs {set(needed) - outputs}, not output by main.bicep")


class FunctionApp(unittest.TestCase):
    def test_handler_settings(self):
        main = parse("infra/main.bicep")
        handler = main["variables"]["handlerSettings"]
        names = keys(handler)
        self.assertTrue(HANDLER_SETTINGS <= names, f"missing {HANDLER_SETTINGS - names}")
        self.assertIn("INPUT_PREFIX", text("infra/main.bicep"))
        self.assertIn("INPUT_SUFFIX", text("infra/main.bicep"))
        fa = parse("infra/modules/functionapp.bicep")
        platform = set(fa["variables"]["platformSettings"]["value"].keys())
        self.assertIn("AZURE_CLIENT_ID", platform)
        self.assertIn("AzureWebJobsStorage__credential", platform)
        all_names = names | platform
        self.assertFalse(all_names & FORBIDDEN_SETTINGS, f"forbidden settings {all_names & FORBIDDEN_SETTINGS}")
        self.assertEqual(main["variables"]["handlerSettings"]["value"]["function"]["parameters"]["arg_2"]["RUNNER"], "batch")

    def test_reconcile_settings(self):
        main = parse("infra/main.bicep")
        handler = main["variables"]["handlerSettings"]["value"]["function"]["parameters"]["arg_2"]
        self.assertEqual(handler["RECONCILE_SCHEDULE"], "reconcileSchedule")
        self.assertEqual(handler["RECONCILE_LOOKBACK"], "reconcileLookback")
        self.assertEqual(handler["RECONCILE_GRACE"], "reconcileGrace")
        self.assertEqual(handler["DEADLETTER_CONTAINER"], "deadLetterContainerName")
        params = main["parameters"]
        # NCRONTAB as the Functions host reads it: six fields, seconds first; every 15 minutes.
        self.assertEqual(params["reconcileSchedule"]["default"], "0 */15 * * * *")
        self.assertEqual(len(params["reconcileSchedule"]["default"].split()), 6)
        self.assertEqual(params["reconcileLookback"]["default"], "PT25H")
        self.assertEqual(params["reconcileGrace"]["default"], "PT10M")
        # The dead-letter container the handler reads is the one Event Grid writes to.
        events = main["modules"]["events"]["config"]["params"]
        self.assertEqual(events["deadLetterContainerName"], "deadLetterContainerName")

    def test_workloads_file_setting(self):
        # WORKLOADS_FILE names the workloads.toml the package carries, relative to the app's root,
        # and is absent without one: the handler then runs the word count on every blob.
        main = parse("infra/main.bicep")
        param = main["parameters"]["workloadsFile"]
        self.assertEqual(param["default"], "")
        allowed = {d["type"]: d["argument"] for d in param["decorators"]}["allowed"]
        self.assertEqual(allowed, ["", "workloads.toml"])
        operands = main["variables"]["workloadSettings"]["value"]["operator"]["operands"]
        self.assertEqual(operands["condition"], {"function": {"type": "empty", "parameters": {"item_to_test": "workloadsFile"}}})
        self.assertEqual(operands["true_value"], {})
        self.assertEqual(operands["false_value"], {"WORKLOADS_FILE": "workloadsFile"})
        optional = main["variables"]["optionalSettings"]["value"]["function"]
        self.assertEqual(optional, {"type": "union", "parameters": {"arg_1": "filterSettings", "arg_2": "workloadSettings",
                                                                    "arg_3": "splitSettings"}})
        handler = main["variables"]["handlerSettings"]["value"]["function"]["parameters"]
        self.assertEqual(handler["arg_1"], "optionalSettings")
        self.assertNotIn("WORKLOADS_FILE", keys(handler["arg_2"]), "WORKLOADS_FILE set even without a file")
        # The relative path is taken from the handler's working directory: the app's root when
        # host.json gives none, where the package puts workloads.toml.
        host = json.loads(text("host.json"))
        self.assertEqual(host["customHandler"]["description"].get("workingDirectory", ""), "")
        self.assertIn('WORKLOADS_NAME = "workloads.toml"', text("scripts/package-functionapp"))

    def test_split_threshold_setting(self):
        # SPLIT_THRESHOLD, like INPUT_PREFIX, only when the parameter is given: unset, the handler
        # applies its default (2 GiB, or off with a warning when the task limits outlast a user
        # delegation key), which an explicit value would turn into a start-up error.
        main = parse("infra/main.bicep")
        param = main["parameters"]["splitThreshold"]
        self.assertEqual((param["type"], param["default"]), ("string", ""))
        operands = main["variables"]["splitSettings"]["value"]["operator"]["operands"]
        self.assertEqual(operands["condition"], {"function": {"type": "empty", "parameters": {"item_to_test": "splitThreshold"}}})
        self.assertEqual(operands["true_value"], {})
        self.assertEqual(operands["false_value"], {"SPLIT_THRESHOLD": "splitThreshold"})
        handler = main["variables"]["handlerSettings"]["value"]["function"]["parameters"]
        self.assertEqual(handler["arg_1"], "optionalSettings")
        self.assertNotIn("SPLIT_THRESHOLD", handler["arg_2"])

    def test_workloads_file_follows_the_package(self):
        # azd passes what the preprovision hook recorded after packaging: workloads.toml when the
        # repository root has one (the file the package carries), empty otherwise.
        params = json.loads(text("infra/main.parameters.json"))["parameters"]
        self.assertEqual(params["workloadsFile"], {"value": "${WORKLOADS_FILE}"})
        build = "\n".join(code_lines(ROOT / "infra/hooks/build"))
        self.assertLess(build.index("scripts/package-functionapp"), build.index("if [[ -f workloads.toml ]]; then"))
        self.assertRegex(build, r"if \[\[ -f workloads.toml \]\]; then\n\s+workloads_file=workloads.toml\n")
        self.assertRegex(build, r"else\n\s+workloads_file=\n")
        self.assertIn('azd env set -e "$AZURE_ENV_NAME" WORKLOADS_FILE "$workloads_file"', build)
        # The deploy hook refuses a package whose workloads file the app setting does not name.
        deploy = "\n".join(code_lines(ROOT / "infra/hooks/deploy"))
        check = deploy.index("az functionapp config appsettings list")
        self.assertLess(check, deploy.index("az functionapp deployment source config-zip"))
        self.assertIn("--query \"[?name=='WORKLOADS_FILE'].value\"", deploy)
        self.assertIn('"workloads.toml" in zipfile.ZipFile(sys.argv[1]).namelist()', deploy)
        self.assertRegex(deploy[check:], r'if \[\[ "\$carried" != "\$configured" \]\]; then\n(.*\n)*?\s+exit 1\n')

    def test_job_mode_is_not_offered(self):
        # Neither a parameter nor an app setting for job mode: the handler runs in task mode.
        main = parse("infra/main.bicep")
        self.assertFalse([p for p in main["parameters"] if "submitmode" in p.lower()],
                         "main.bicep offers a submit-mode parameter")
        self.assertFalse(keys(main["variables"]["handlerSettings"]) & JOB_MODE_SETTINGS)
        for path in deployment_files():
            for no, line in enumerate(code_lines(path), 1):
                for word in ("BATCH_SUBMIT_MODE", "batchSubmitMode", "BATCH_AUTO_POOL"):
                    self.assertNotIn(word.lower(), line.lower(), f"{path.relative_to(ROOT)}:{no}: {line.strip()}")

    def test_maximum_instance_count_range(self):
        # Flex Consumption: maximumInstanceCount from 40 to 1000, in main.bicep and in the module.
        for rel, name in [("infra/main.bicep", "functionMaximumInstanceCount"),
                          ("infra/modules/functionapp.bicep", "maximumInstanceCount")]:
            param = parse(rel)["parameters"][name]
            bounds = {d["type"]: d["argument"] for d in param["decorators"]}
            self.assertEqual((bounds.get("min_value"), bounds.get("max_value")), (40, 1000), f"{rel}: {name}")
            self.assertGreaterEqual(param["default"], 40)
        site = parse("infra/modules/functionapp.bicep")["resources"]["site"]["config"]
        scale = site["properties"]["functionAppConfig"]["scaleAndConcurrency"]
        self.assertEqual(scale["maximumInstanceCount"], "maximumInstanceCount")

    def test_flex_custom_runtime(self):
        fa = parse("infra/modules/functionapp.bicep")
        site = fa["resources"]["site"]["config"]
        self.assertEqual(site["kind"], "functionapp,linux")
        cfg = site["properties"]["functionAppConfig"]
        self.assertEqual(cfg["runtime"]["name"], "custom")
        self.assertEqual(cfg["deployment"]["storage"]["authentication"]["type"], "UserAssignedIdentity")
        plan = fa["resources"]["plan"]["config"]
        self.assertEqual(plan["sku"], {"name": "FC1", "tier": "FlexConsumption"})


def function_definitions() -> dict[str, dict]:
    """Every top-level folder holding a function.json, as the package script collects them."""
    return {
        p.name: json.loads((p / "function.json").read_text())
        for p in sorted(ROOT.iterdir())
        if p.is_dir() and not p.name.startswith(".") and (p / "function.json").is_file()
    }


class Functions(unittest.TestCase):
    def test_reconcile_timer(self):
        fns = function_definitions()
        self.assertIn("BlobCreated", fns)
        self.assertIn("Reconcile", fns)
        (binding,) = fns["Reconcile"]["bindings"]
        self.assertEqual(binding, {"type": "timerTrigger", "direction": "in", "name": "timer",
                                   "schedule": "%RECONCILE_SCHEDULE%"})

    def test_setting_expressions_resolve(self):
        # The host replaces %NAME% in a binding with the app setting NAME and does not index a
        # function whose setting is missing: each one must be set in Azure and under func start.
        used = set()
        for name, fn in function_definitions().items():
            for value in strings(fn):
                used |= set(re.findall(r"%([A-Za-z0-9_]+)%", value))
        self.assertIn("RECONCILE_SCHEDULE", used)
        app = keys(parse("infra/main.bicep")["variables"]["handlerSettings"])
        self.assertFalse(used - app, f"not app settings in main.bicep: {used - app}")
        local = set(json.loads(text("local.settings.example.json"))["Values"])
        self.assertFalse(used - local, f"not in local.settings.example.json: {used - local}")

    def test_deploy_hook_waits_for_every_function(self):
        hook = text("infra/hooks/deploy")
        assigned = re.findall(r"^(\w*function_name)=(\w+)$", hook, re.M)
        self.assertEqual(sorted(name for _, name in assigned), sorted(function_definitions()))
        waited = " ".join(f'"${var}"' for var, _ in assigned)
        self.assertIn(f"for name in {waited}; do", hook)


class Events(unittest.TestCase):
    def test_subscription(self):
        sub = parse("infra/subscription.bicep")["resources"]["subscription"]["config"]["properties"]
        self.assertEqual(sub["destination"]["endpointType"], "AzureFunction")
        self.assertIn("/functions/", "".join(strings(sub["destination"]["properties"]["resourceId"])))
        flt = sub["filter"]
        self.assertEqual(flt["includedEventTypes"], ["Microsoft.Storage.BlobCreated"])
        self.assertRegex(flt["subjectBeginsWith"], r"^/blobServices/default/containers/\$\{inputContainerName\}/blobs/$")
        (adv,) = flt["advancedFilters"]
        self.assertEqual((adv["operatorType"], adv["key"]), ("StringIn", "data.api"))
        self.assertEqual(sorted(adv["values"]), sorted(["PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose", "SftpCommit"]))
        self.assertIn("maxDeliveryAttempts", sub["retryPolicy"])
        self.assertIn("eventTimeToLiveInMinutes", sub["retryPolicy"])
        dl = sub["deadLetterWithResourceIdentity"]
        self.assertEqual(dl["identity"]["type"], "SystemAssigned")
        self.assertEqual(dl["deadLetterDestination"]["endpointType"], "StorageBlob")
        self.assertNotIn("deadLetterDestination", sub, "dead-lettering must use the managed identity")

    def test_topic_identity_may_write_dead_letters(self):
        ev = parse("infra/modules/events.bicep")
        self.assertEqual(ev["resources"]["systemTopic"]["config"]["identity"]["type"], "SystemAssigned")
        (scope, role), = role_assignments(ev)
        self.assertEqual(scope, "deadLetterContainer")
        self.assertIn("blobDataContributor", role)


class Alerts(unittest.TestCase):
    def setUp(self):
        self.alerts = parse("infra/modules/alerts.bicep")

    def metric_alert(self, resource, metric, severity):
        res = self.alerts["resources"][resource]
        self.assertEqual(res["type"], "Microsoft.Insights/metricAlerts")
        alert = res["config"]
        self.assertEqual(alert["location"], "global")
        props = alert["properties"]
        self.assertEqual((props["severity"], props["enabled"]), (severity, True))
        self.assertEqual((props["windowSize"], props["evaluationFrequency"]), ("PT15M", "PT5M"))
        criteria = props["criteria"]
        self.assertEqual(criteria["'odata.type'"], "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria")
        (criterion,) = criteria["allOf"]
        self.assertEqual(criterion["criterionType"], "StaticThresholdCriterion")
        self.assertEqual(criterion["metricNamespace"], "Microsoft.EventGrid/systemTopics")
        self.assertEqual(criterion["metricName"], metric)
        self.assertEqual((criterion["timeAggregation"], criterion["operator"], criterion["threshold"]),
                         ("Total", "GreaterThan", 0))
        # It watches the system topic of events.bicep, the one the subscription dead-letters from.
        (scope,) = props["scopes"]
        self.assertEqual(scope["operator"]["operands"], {"operand_1": "systemTopic", "operand_2": "id"})
        actions = props["actions"]["operator"]
        self.assertEqual(actions["type"], "conditional")
        self.assertIn("actionGroupName", strings(actions["operands"]["false_value"]))

    def test_dropped_events_alert(self):
        # A dropped event is the one loss nothing else reports.
        self.metric_alert("droppedAlert", "DroppedEventCount", 1)
        given = parse("infra/main.bicep")["modules"]["alerts"]["config"]["params"]
        self.assertIn("droppedAlertName", given)

    def test_dead_letter_alert(self):
        self.metric_alert("deadLetterAlert", "DeadLetteredCount", 2)
        topic = self.alerts["resources"]["systemTopic"]
        self.assertTrue(topic["existing"])
        self.assertEqual(topic["type"], "Microsoft.EventGrid/systemTopics")
        self.assertEqual(topic["config"]["name"], "systemTopicName")
        given = parse("infra/main.bicep")["modules"]["alerts"]["config"]["params"]
        self.assertEqual(set(strings(given["systemTopicName"])) - {"property_accessor"}, {"events", "outputs", "name"})

    def test_email_is_optional(self):
        self.assertEqual(parse("infra/main.bicep")["parameters"]["alertEmail"]["default"], "")
        self.assertEqual(self.alerts["parameters"]["alertEmail"]["default"], "")
        self.assertEqual(json.loads(text("infra/main.parameters.json"))["parameters"]["alertEmail"],
                         {"value": "${ALERT_EMAIL}"})
        # No e-mail: no action group and no action; with one, the group e-mails it.
        group = self.alerts["resources"]["actionGroup"]
        self.assertEqual(group["type"], "Microsoft.Insights/actionGroups")
        self.assertEqual(strings(group["config"]["condition"]), ["not", "empty", "alertEmail"])
        (receiver,) = group["config"]["config"]["properties"]["emailReceivers"]
        self.assertEqual(receiver["emailAddress"], "alertEmail")
        self.assertLessEqual(len(self.alerts["variables"]["actionGroupShortName"]["value"]), 12)
        actions = self.alerts["resources"]["deadLetterAlert"]["config"]["properties"]["actions"]["operator"]
        self.assertEqual(actions["type"], "conditional")
        self.assertEqual(actions["operands"]["true_value"], [])
        self.assertIn("actionGroupName", strings(actions["operands"]["false_value"]))


class Staging(unittest.TestCase):
    def setUp(self):
        self.storage = parse("infra/modules/storage.bicep")
        self.main = parse("infra/main.bicep")

    def test_staging_container(self):
        # Split word counts: the parts leave their partial counts in a container of their own on
        # the data account, named by main.bicep's stagingContainerName ('staging').
        res = self.storage["resources"]["stagingContainer"]
        self.assertEqual(res["type"], "Microsoft.Storage/storageAccounts/blobServices/containers")
        self.assertFalse(res["existing"])
        self.assertEqual(res["config"], {"parent": "blobService", "name": "stagingContainerName",
                                         "properties": {"publicAccess": "None"}})
        self.assertEqual(self.storage["parameters"]["stagingContainerName"]["default"], None)
        params = self.main["parameters"]
        self.assertEqual(params["stagingContainerName"]["default"], "staging")
        given = self.main["modules"]["storage"]["config"]["params"]
        self.assertEqual(given["stagingContainerName"], "stagingContainerName")
        # The handler refuses a staging container that is the input or the output container, and
        # the lifecycle rule below deletes whatever is in it: the defaults are four containers.
        defaults = [params[f"{c}ContainerName"]["default"] for c in ("input", "output", "deadLetter", "staging")]
        self.assertEqual(len(set(defaults)), 4, defaults)

    def test_staging_setting(self):
        # STAGING_CONTAINER names the container storage.bicep created (its output, not the
        # parameter again), the one the lifecycle rule and the pool identity's role apply to.
        handler = self.main["variables"]["handlerSettings"]["value"]["function"]["parameters"]["arg_2"]
        created = {"operator": {"type": "property_accessor", "operands": {
            "operand_1": "storage", "operand_2": {"operator": {"type": "property_accessor", "operands": {
                "operand_1": "outputs", "operand_2": "stagingContainerName"}}}}}}
        self.assertEqual(handler["STAGING_CONTAINER"], created)
        self.assertEqual(self.main["outputs"]["STAGING_CONTAINER"]["value"], created)
        self.assertEqual(self.storage["outputs"]["stagingContainerName"]["value"],
                         {"operator": {"type": "property_accessor",
                                       "operands": {"operand_1": "stagingContainer", "operand_2": "name"}}})
        # The parts' sizes are the handler's defaults: no setting, no parameter.
        names = keys(self.main["variables"]["handlerSettings"])
        self.assertFalse(names & {"SPLIT_PART_SIZE", "SPLIT_MAX_PARTS"})
        self.assertFalse([p for p in self.main["parameters"] if re.search(r"part(size|s)", p, re.I)])

    def test_one_lifecycle_policy(self):
        # A storage account has one management policy, named 'default': every lifecycle rule of
        # the deployment lives in this one resource, on the data account.
        policies = [(rel, symbol) for rel in MODULES
                    for symbol, res in parse(rel)["resources"].items()
                    if res["type"] == "Microsoft.Storage/storageAccounts/managementPolicies"]
        self.assertEqual(policies, [("infra/modules/storage.bicep", "lifecyclePolicy")])
        cfg = self.storage["resources"]["lifecyclePolicy"]["config"]
        self.assertEqual((cfg["parent"], cfg["name"]), ("account", "default"))
        self.assertEqual(self.storage["resources"]["account"]["type"], "Microsoft.Storage/storageAccounts")

    def test_staged_partial_counts_expire(self):
        # Partial counts are deleted stagingRetentionDays (3 by default) after they were written:
        # block blobs (what Batch output files upload) whose name starts with the staging
        # container's name and a slash, so no other container is touched, the base blob deleted.
        (rule,) = self.storage["resources"]["lifecyclePolicy"]["config"]["properties"]["policy"]["rules"]
        self.assertEqual((rule["enabled"], rule["type"]), (True, "Lifecycle"))
        self.assertRegex(rule["name"], r"^[A-Za-z0-9]{1,256}$")
        definition = rule["definition"]
        self.assertEqual(definition["filters"], {"blobTypes": ["blockBlob"],
                                                 "prefixMatch": ["${stagingContainer.name}/"]})
        self.assertEqual(definition["actions"],
                         {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": "stagingRetentionDays"}}})
        for rel, default in [("infra/main.bicep", 3), ("infra/modules/storage.bicep", None)]:
            param = parse(rel)["parameters"]["stagingRetentionDays"]
            self.assertEqual(param["type"], "int", rel)
            self.assertEqual(param["default"], default, rel)
            bounds = {d["type"]: d["argument"] for d in param["decorators"]}
            self.assertEqual(bounds["min_value"], 1, rel)
        given = self.main["modules"]["storage"]["config"]["params"]
        self.assertEqual(given["stagingRetentionDays"], "stagingRetentionDays")


    def test_pool_identity_stages_partial_counts(self):
        # The parts upload their partial counts (Batch output files: create, write) and the merge
        # fetches them (a storageContainerUrl resource file with a blobPrefix: list, read), both as
        # the pool identity: Storage Blob Data Contributor on the staging container itself, built
        # exactly as the output container's assignment, and the only role anyone has there.
        on_staging = [g for rel in MODULES for g in grants(rel) if g["scope"] == "stagingContainer"]
        self.assertEqual([(g["symbol"], g["role"], g["principal"], g["condition"]) for g in on_staging],
                         [("poolStagesPartialCounts", "blobDataContributor", "poolIdentityPrincipalId", None)])
        resources = self.storage["resources"]
        cfg = resources["poolStagesPartialCounts"]["config"]
        output = resources["poolWritesOutput"]["config"]
        self.assertEqual(cfg["scope"], "stagingContainer")
        self.assertEqual(cfg["properties"], output["properties"])
        self.assertEqual(cfg["properties"]["principalType"], "ServicePrincipal")
        role = cfg["properties"]["roleDefinitionId"]["function"]
        self.assertEqual(role["type"], "subscription_resource_id")
        self.assertEqual((role["parameters"]["resource_type"], role["parameters"]["resource_name_1"]),
                         ("Microsoft.Authorization/roleDefinitions", "blobDataContributor"))
        self.assertEqual(cfg["name"]["function"]["parameters"],
                         {"base_string": {"operator": {"type": "property_accessor",
                                                       "operands": {"operand_1": "stagingContainer", "operand_2": "id"}}},
                          "extra_string_1": "poolIdentityPrincipalId", "extra_string_2": "blobDataContributor"})
        self.assertEqual(self.storage["variables"]["blobDataContributor"]["value"], ROLE["blob_contributor"])
        # The principal is the pool's identity, the one the handler names in BATCH_NODE_IDENTITY
        # for the tasks' output files and resource files.
        identity = lambda node: set(strings(node)) - {"property_accessor"}
        given = self.main["modules"]["storage"]["config"]["params"]
        self.assertEqual(identity(given["poolIdentityPrincipalId"]), {"identities", "outputs", "poolIdentityPrincipalId"})
        handler = self.main["variables"]["handlerSettings"]["value"]["function"]["parameters"]["arg_2"]
        self.assertEqual(identity(handler["BATCH_NODE_IDENTITY"]), {"identities", "outputs", "poolIdentityId"})

    def test_function_identity_has_no_role_on_staging(self):
        # The handler plans the parts and the merge but never reads or writes partial counts:
        # no role of the function identity reaches the staging container, nor the account's data
        # (Storage Blob Delegator, on the account, allows user delegation keys only).
        for rel in MODULES:
            for g in grants(rel):
                if g["principal"] == "functionIdentityPrincipalId":
                    self.assertNotEqual(g["scope"], "stagingContainer", f"{rel}: {g['symbol']}")
                    if g["scope"] == "account" and rel == "infra/modules/storage.bicep":
                        self.assertEqual(g["role"], "blobDelegator", g["symbol"])


class Batch(unittest.TestCase):
    def setUp(self):
        self.batch = parse("infra/modules/batch.bicep")

    def test_account(self):
        props = self.batch["resources"]["account"]["config"]["properties"]
        self.assertEqual(props["poolAllocationMode"], "BatchService")
        self.assertIn("AAD", props["allowedAuthenticationModes"])
        self.assertNotIn("SharedKey", props["allowedAuthenticationModes"])

    def test_pool(self):
        pool = self.batch["resources"]["pool"]["config"]
        self.assertEqual(pool["identity"]["type"], "UserAssigned")
        vmc = pool["properties"]["deploymentConfiguration"]["virtualMachineConfiguration"]
        self.assertEqual(vmc["imageReference"]["publisher"], "microsoft-dsvm")
        self.assertEqual(vmc["imageReference"]["offer"], "ubuntu-hpc")
        self.assertEqual(vmc["imageReference"]["sku"], "2204")
        self.assertEqual(vmc["nodeAgentSkuId"], "batch.node.ubuntu 22.04")
        cc = vmc["containerConfiguration"]
        self.assertEqual(cc["type"], "DockerCompatible")
        self.assertEqual(cc["containerRegistries"][0]["identityReference"]["resourceId"], "poolIdentityId")
        self.assertIn("autoScale", pool["properties"]["scaleSettings"])

    def test_autoscale_formula(self):
        formula = "\n".join(strings(self.batch["variables"]["autoScaleFormula"]))
        self.assertIn("$PendingTasks.GetSamplePercent(", formula)
        self.assertIn("$NodeDeallocationOption = taskcompletion;", formula)
        self.assertIn("$TargetLowPriorityNodes", formula)
        self.assertIn("min(${maxNodes}", formula)

    def test_function_may_only_submit_jobs(self):
        res = self.batch["resources"]["functionSubmitsJobs"]["config"]
        self.assertEqual(res["scope"], "account")
        self.assertIn("jobSubmitter", strings(res["properties"]["roleDefinitionId"]))
        self.assertEqual(res["properties"]["principalId"], "functionIdentityPrincipalId")
        self.assertIn(ROLE["job_submitter"], text("infra/modules/batch.bicep"))


class LeastPrivilege(unittest.TestCase):
    def test_pool_identity_roles(self):
        st = parse("infra/modules/storage.bicep")
        pool = {r: s for r, s in [(k, v["config"]) for k, v in st["resources"].items()] if r.startswith("pool")}
        self.assertEqual(pool["poolReadsInput"]["scope"], "inputContainer")
        self.assertIn("blobDataReader", strings(pool["poolReadsInput"]["properties"]["roleDefinitionId"]))
        self.assertEqual(pool["poolWritesOutput"]["scope"], "outputContainer")
        self.assertIn("blobDataContributor", strings(pool["poolWritesOutput"]["properties"]["roleDefinitionId"]))
        reg = parse("infra/modules/registry.bicep")
        (scope, role), = role_assignments(reg)
        self.assertEqual(scope, "registry")
        self.assertIn("acrPull", role)

    def test_pool_identity_roles_are_exactly(self):
        # Everything the pool's identity may do: read input, write results and task logs, stage
        # and read back partial counts of split word counts, pull images.
        found = {(rel, g["scope"], g["role"]) for rel in MODULES for g in grants(rel)
                 if g["principal"] == "poolIdentityPrincipalId"}
        self.assertEqual(found, {
            ("infra/modules/storage.bicep", "inputContainer", "blobDataReader"),
            ("infra/modules/storage.bicep", "outputContainer", "blobDataContributor"),
            ("infra/modules/storage.bicep", "stagingContainer", "blobDataContributor"),
            ("infra/modules/registry.bicep", "registry", "acrPull"),
        })

    def test_pool_identity_pulls_any_image_of_the_registry(self):
        # A workload may run any image of the deployment's registry: AcrPull on the registry
        # itself (every repository), unconditionally, for the identity the pool logs in with.
        reg = parse("infra/modules/registry.bicep")
        (grant,) = grants("infra/modules/registry.bicep")
        self.assertEqual((grant["scope"], grant["role"], grant["principal"]),
                         ("registry", "acrPull", "poolIdentityPrincipalId"))
        self.assertIsNone(grant["condition"])
        registry = reg["resources"]["registry"]
        self.assertEqual(registry["type"], "Microsoft.ContainerRegistry/registries")
        self.assertFalse(registry["existing"])
        # A registry in ABAC repository-permissions mode does not honour AcrPull at all.
        self.assertNotIn("roleAssignmentMode", registry["config"]["properties"])
        self.assertEqual(reg["variables"]["acrPull"]["value"], ROLE["acr_pull"])
        # The identity granted AcrPull is the pool's, the one its registry login and the
        # handler's BATCH_NODE_IDENTITY name, and the registry is the deployment's.
        main = parse("infra/main.bicep")
        identity = lambda node: set(strings(node)) - {"property_accessor"}
        self.assertEqual(identity(main["modules"]["registry"]["config"]["params"]["poolIdentityPrincipalId"]),
                         {"identities", "outputs", "poolIdentityPrincipalId"})
        batch_params = main["modules"]["batch"]["config"]["params"]
        self.assertEqual(identity(batch_params["poolIdentityId"]), {"identities", "outputs", "poolIdentityId"})
        self.assertEqual(identity(batch_params["registryServer"]), {"registry", "outputs", "loginServer"})
        handler = main["variables"]["handlerSettings"]["value"]["function"]["parameters"]["arg_2"]
        self.assertEqual(identity(handler["BATCH_NODE_IDENTITY"]), {"identities", "outputs", "poolIdentityId"})
        pool = parse("infra/modules/batch.bicep")["resources"]["pool"]["config"]
        self.assertEqual(pool["identity"]["userAssignedIdentities"], {"'${poolIdentityId}'": {}})
        cc = pool["properties"]["deploymentConfiguration"]["virtualMachineConfiguration"]["containerConfiguration"]
        self.assertEqual(cc["containerRegistries"], [{"registryServer": "registryServer",
                                                      "identityReference": {"resourceId": "poolIdentityId"}}])

    def test_function_identity_roles(self):
        # Everything the function app's identity may do, and nothing more. On the data account:
        # read input and output, container by container, for the Reconcile timer; get user
        # delegation keys (the account), to sign read-only URLs for workloads with input = "url".
        main = parse("infra/main.bicep")["modules"]
        for module in ("storage", "monitoring", "batch"):
            given = strings(main[module]["config"]["params"]["functionIdentityPrincipalId"])
            self.assertEqual(set(given) - {"property_accessor"},
                             {"identities", "outputs", "functionIdentityPrincipalId"}, module)
        found = {(rel, g["scope"], g["role"]) for rel in MODULES for g in grants(rel)
                 if g["principal"] == "functionIdentityPrincipalId"}
        self.assertEqual(found, {
            ("infra/modules/storage.bicep", "inputContainer", "blobDataReader"),
            ("infra/modules/storage.bicep", "outputContainer", "blobDataReader"),
            ("infra/modules/storage.bicep", "account", "blobDelegator"),
            ("infra/modules/functionapp.bicep", "hostStorage", "blobDataOwner"),
            ("infra/modules/monitoring.bicep", "appInsights", "monitoringMetricsPublisher"),
            ("infra/modules/batch.bicep", "account", "jobSubmitter"),
        })
        storage = [g for g in grants("infra/modules/storage.bicep") if g["principal"] == "functionIdentityPrincipalId"]
        self.assertTrue(all(g["condition"] is None for g in storage))

    def test_function_may_get_delegation_keys(self):
        # Get User Delegation Key is authorized on the storage account, never on a container:
        # Storage Blob Delegator on the data account itself, for the function identity, always.
        st = parse("infra/modules/storage.bicep")
        (grant,) = [g for g in grants("infra/modules/storage.bicep") if g["role"] == "blobDelegator"
                    and g["principal"] == "functionIdentityPrincipalId"]
        self.assertEqual(grant["scope"], "account")
        self.assertIsNone(grant["condition"])
        self.assertEqual(st["resources"]["account"]["type"], "Microsoft.Storage/storageAccounts")
        self.assertFalse(st["resources"]["account"]["existing"])
        cfg = st["resources"][grant["symbol"]]["config"]
        self.assertEqual(cfg["properties"]["principalType"], "ServicePrincipal")
        self.assertEqual(cfg["properties"]["roleDefinitionId"]["function"]["parameters"]["resource_type"],
                         "Microsoft.Authorization/roleDefinitions")
        self.assertEqual(cfg["name"]["function"]["parameters"],
                         {"base_string": {"operator": {"type": "property_accessor",
                                                       "operands": {"operand_1": "account", "operand_2": "id"}}},
                          "extra_string_1": "functionIdentityPrincipalId", "extra_string_2": "blobDelegator"})
        self.assertEqual(st["variables"]["blobDelegator"]["value"], ROLE["blob_delegator"])
        given = parse("infra/main.bicep")["modules"]["storage"]["config"]["params"]["functionIdentityPrincipalId"]
        self.assertEqual(set(strings(given)) - {"property_accessor"},
                         {"identities", "outputs", "functionIdentityPrincipalId"})

    def test_user_roles(self):
        # The deploying user (principalId): upload input, read output, redrive dead letters,
        # read the Batch account and add tasks (blob2batch status, reconcile, redrive), and sign
        # the URLs of workloads with input = "url" when reconcile and redrive submit their tasks.
        found = {(rel, g["scope"], g["role"]) for rel in MODULES for g in grants(rel)
                 if g["principal"] == "userPrincipalId"}
        self.assertEqual(found, {
            ("infra/modules/storage.bicep", "inputContainer", "blobDataContributor"),
            ("infra/modules/storage.bicep", "outputContainer", "blobDataReader"),
            ("infra/modules/storage.bicep", "deadLetterContainer", "blobDataContributor"),
            ("infra/modules/storage.bicep", "account", "blobDelegator"),
            ("infra/modules/batch.bicep", "account", "accountReader"),
            ("infra/modules/batch.bicep", "account", "jobSubmitter"),
        })
        for rel in MODULES:
            for g in grants(rel):
                if g["principal"] == "userPrincipalId":
                    self.assertEqual(g["condition"]["operator"]["type"], "not", f"{rel}: {g['symbol']} must be conditional")
        main = parse("infra/main.bicep")["modules"]
        for module in ("storage", "batch"):
            self.assertEqual(main[module]["config"]["params"]["userPrincipalId"], "principalId")

    def test_every_role_assignment_says_why(self):
        for rel in MODULES:
            lines = text(rel).splitlines()
            for no, line in enumerate(lines):
                if "'Microsoft.Authorization/roleAssignments@" in line:
                    self.assertTrue(lines[no - 1].lstrip().startswith("//"),
                                    f"{rel}:{no + 1}: role assignment without a comment saying why")

    def test_role_ids(self):
        for rel, var, role in [
            ("infra/modules/storage.bicep", "blobDataReader", "blob_reader"),
            ("infra/modules/storage.bicep", "blobDataContributor", "blob_contributor"),
            ("infra/modules/storage.bicep", "blobDelegator", "blob_delegator"),
            ("infra/modules/events.bicep", "blobDataContributor", "blob_contributor"),
            ("infra/modules/registry.bicep", "acrPull", "acr_pull"),
            ("infra/modules/batch.bicep", "jobSubmitter", "job_submitter"),
            ("infra/modules/batch.bicep", "accountReader", "batch_account_reader"),
        ]:
            self.assertEqual(parse(rel)["variables"][var]["value"], ROLE[role], f"{rel}: {var}")

    def test_no_account_keys_used(self):
        for path in INFRA.rglob("*.bicep"):
            body = path.read_text()
            self.assertNotIn("listKeys(", body, f"{path.name} reads account keys")
            self.assertNotIn("listkeys(", body.lower(), f"{path.name} reads account keys")

    def test_storage_hardening(self):
        for rel, res in [("infra/modules/storage.bicep", "account"), ("infra/modules/functionapp.bicep", "hostStorage")]:
            props = parse(rel)["resources"][res]["config"]["properties"]
            self.assertIs(props["allowBlobPublicAccess"], False)
            self.assertIs(props["allowSharedKeyAccess"], False)
            self.assertIs(props["supportsHttpsTrafficOnly"], True)
            self.assertEqual(props["minimumTlsVersion"], "TLS1_2")


class CheckovSkips(unittest.TestCase):
    def test_every_skip_has_a_reason(self):
        for path in INFRA.rglob("*.bicep"):
            for no, line in enumerate(path.read_text().splitlines(), 1):
                if "checkov:skip" in line:
                    self.assertRegex(line, r"//\s*checkov:skip=CKV2?_AZURE_\d+:\s*\S.{20,}",
                                     f"{path.name}:{no}: skip without a reason")


if __name__ == "__main__":
    unittest.main()
