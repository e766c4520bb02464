#!/usr/bin/env python3
"""What CloudFormation refuses in a template and cfn-lint lets through.

    check-template.py TEMPLATE...   exit 1 naming each problem, 0 when none
    check-template.py --self-test   feed it small bad templates; exit 1 unless
                                    each one is refused and a good one passes
    check-template.py --same-resource NAME A B
                                    exit 1 unless resource NAME is the same in
                                    templates A and B (its Condition aside)
    check-template.py --samconfig samconfig.toml
                                    exit 1 unless each environment's
                                    parameter_overrides name parameters of its
                                    template and give every one without a
                                    Default

Checks:
- Rules use rule functions only: in a rule's RuleCondition and Assertions,
  CloudFormation accepts Fn::And, Fn::Contains, Fn::EachMemberEquals,
  Fn::EachMemberIn, Fn::Equals, Fn::If, Fn::Not, Fn::Or, Fn::RefAll,
  Fn::ValueOf, Fn::ValueOfAll and Ref (user guide, "Rule functions"); any
  other function (Fn::Join, Fn::Select, Fn::Sub, ...) fails the deploy. A Ref
  there names a parameter.
- Every condition named (a resource's or output's Condition, Fn::If,
  {"Condition": X} inside Conditions) is defined.
- Every Ref, GetAtt and ${X} / ${X.Y} of a Sub names a parameter, a pseudo
  parameter or a resource (a Sub's own variables included); every DependsOn
  names a resource; every Fn::FindInMap with literal keys finds its entry.

Short-form tags (!Ref, !Sub, !GetAtt, ...) are read as the long form they
stand for. Python 3 with PyYAML (cfn-lint's venv has it).
"""

import re
import sys

import yaml

RULE_FUNCTIONS = {
    "Fn::And",
    "Fn::Contains",
    "Fn::EachMemberEquals",
    "Fn::EachMemberIn",
    "Fn::Equals",
    "Fn::If",
    "Fn::Not",
    "Fn::Or",
    "Fn::RefAll",
    "Fn::ValueOf",
    "Fn::ValueOfAll",
    "Ref",
}

PSEUDO_PARAMETERS = {
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
}


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation's short-form tags."""


def _construct_tagged(loader, tag_suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Fn::" + tag_suffix: value}


_Loader.add_multi_constructor("!", _construct_tagged)


def load(text):
    return yaml.load(text, Loader=_Loader)


def _function(node):
    """The function a mapping stands for (its one key), or None."""
    if isinstance(node, dict) and len(node) == 1:
        key = next(iter(node))
        if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
            return key
    return None


def _walk(node, path):
    """Every (path, node) below node, node included."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def check(template, name="template"):
    """Every problem found, as lines naming the path and what is wrong."""
    problems = []
    if not isinstance(template, dict):
        return [f"{name}: not a mapping"]
    parameters = set((template.get("Parameters") or {}).keys())
    resources = set((template.get("Resources") or {}).keys())
    conditions = set((template.get("Conditions") or {}).keys())
    mappings = template.get("Mappings") or {}
    names = parameters | resources | PSEUDO_PARAMETERS

    # Rules: rule functions only; a Ref names a parameter.
    for rule_name, rule in (template.get("Rules") or {}).items():
        base = f"Rules.{rule_name}"
        if not isinstance(rule, dict):
            problems.append(f"{name}: {base}: not a mapping")
            continue
        for key in rule:
            if key not in ("RuleCondition", "Assertions"):
                problems.append(f"{name}: {base}.{key}: a rule holds only RuleCondition and Assertions")
        parts = []
        if "RuleCondition" in rule:
            parts.append((f"{base}.RuleCondition", rule["RuleCondition"]))
        assertions = rule.get("Assertions")
        if not isinstance(assertions, list) or not assertions:
            problems.append(f"{name}: {base}.Assertions: a rule needs a list of assertions")
            assertions = []
        for i, assertion in enumerate(assertions):
            if not isinstance(assertion, dict) or "Assert" not in assertion:
                problems.append(f"{name}: {base}.Assertions[{i}]: an assertion needs Assert")
                continue
            for key in assertion:
                if key not in ("Assert", "AssertDescription"):
                    problems.append(
                        f"{name}: {base}.Assertions[{i}].{key}: an assertion holds only Assert and AssertDescription"
                    )
            parts.append((f"{base}.Assertions[{i}].Assert", assertion["Assert"]))
        for part_path, part in parts:
            for path, node in _walk(part, part_path):
                function = _function(node)
                if function is None:
                    continue
                if function not in RULE_FUNCTIONS:
                    problems.append(
                        f"{name}: {path}: {function} is not a rule function "
                        f"(Rules take only {', '.join(sorted(RULE_FUNCTIONS))})"
                    )
                elif function == "Ref" and node["Ref"] not in parameters | PSEUDO_PARAMETERS:
                    problems.append(f"{name}: {path}: Ref {node['Ref']!r} names no parameter")

    # Conditions named anywhere exist.
    for section in ("Resources", "Outputs"):
        for logical, body in (template.get(section) or {}).items():
            if isinstance(body, dict) and "Condition" in body:
                if body["Condition"] not in conditions:
                    problems.append(
                        f"{name}: {section}.{logical}.Condition: {body['Condition']!r} is not in Conditions"
                    )
    for path, node in _walk(template, "$"):
        function = _function(node)
        if function == "Fn::If":
            args = node["Fn::If"]
            if not isinstance(args, list) or len(args) != 3:
                problems.append(f"{name}: {path}: Fn::If takes [condition, then, else]")
            elif args[0] not in conditions:
                problems.append(f"{name}: {path}: Fn::If names {args[0]!r}, not in Conditions")
        elif function == "Condition" and path.startswith("$.Conditions"):
            if node["Condition"] not in conditions:
                problems.append(f"{name}: {path}: {node['Condition']!r} is not in Conditions")

    # Ref, GetAtt, Sub, DependsOn, FindInMap name what exists. Rules are
    # checked above (their Refs name parameters only).
    for path, node in _walk(template, "$"):
        if path.startswith("$.Rules"):
            continue
        function = _function(node)
        if function == "Ref":
            if node["Ref"] not in names:
                problems.append(f"{name}: {path}: Ref {node['Ref']!r} names no parameter, pseudo parameter or resource")
        elif function == "Fn::GetAtt":
            target = node["Fn::GetAtt"]
            if not isinstance(target, list) or len(target) != 2:
                problems.append(f"{name}: {path}: Fn::GetAtt takes Resource.Attribute")
            elif target[0] not in resources:
                problems.append(f"{name}: {path}: Fn::GetAtt {target[0]}.{target[1]} names no resource")
        elif function == "Fn::Sub":
            args = node["Fn::Sub"]
            own = set()
            if isinstance(args, list):
                if len(args) != 2 or not isinstance(args[1], dict):
                    problems.append(f"{name}: {path}: Fn::Sub takes a string or [string, {{variables}}]")
                    continue
                text, own = args[0], set(args[1].keys())
            else:
                text = args
            if not isinstance(text, str):
                continue
            for variable in _SUB_VARIABLE.findall(text):
                attribute = "." in variable and not variable.startswith("AWS::")
                head = variable.split(".", 1)[0] if attribute else variable
                if head in own:
                    continue
                if attribute:
                    if head not in resources:
                        problems.append(f"{name}: {path}: ${{{variable}}} names no resource")
                elif variable not in names:
                    problems.append(
                        f"{name}: {path}: ${{{variable}}} names no parameter, pseudo parameter or resource"
                    )
        elif function == "Fn::FindInMap":
            args = node["Fn::FindInMap"]
            if not isinstance(args, list) or len(args) < 3:
                problems.append(f"{name}: {path}: Fn::FindInMap takes [map, key, key]")
                continue
            map_name, first, second = args[0], args[1], args[2]
            if not isinstance(map_name, str):
                continue
            if map_name not in mappings:
                problems.append(f"{name}: {path}: Fn::FindInMap names {map_name!r}, not in Mappings")
                continue
            table = mappings[map_name]
            if isinstance(first, (str, int)) and str(first) not in {str(k) for k in table}:
                problems.append(f"{name}: {path}: Mappings.{map_name} has no key {first!r}")
            elif isinstance(first, (str, int)) and isinstance(second, str):
                row = {str(k): v for k, v in table.items()}[str(first)]
                if second not in row:
                    problems.append(f"{name}: {path}: Mappings.{map_name}.{first} has no key {second!r}")
            elif not isinstance(first, (str, int)) and isinstance(second, str):
                for key, row in table.items():
                    if second not in row:
                        problems.append(f"{name}: {path}: Mappings.{map_name}.{key} has no key {second!r}")
    for logical, body in (template.get("Resources") or {}).items():
        if not isinstance(body, dict):
            continue
        depends = body.get("DependsOn", [])
        for target in [depends] if isinstance(depends, str) else depends:
            if target not in resources:
                problems.append(f"{name}: Resources.{logical}.DependsOn: {target!r} names no resource")
    return problems


SELF_TEST_GOOD = """
Parameters:
  Subnets: {Type: "List<AWS::EC2::Subnet::Id>"}
  Minutes: {Type: Number, Default: 1}
Mappings:
  Period:
    "1": {Seconds: 60}
Conditions:
  Always: !Equals [a, a]
  AlsoAlways: !And [!Condition Always, !Not [!Equals [a, b]]]
Rules:
  NeedsSubnets:
    Assertions:
      - Assert: !Not [!Contains [!Ref Subnets, ""]]
        AssertDescription: Subnets has no empty member.
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Condition: Always
  Queue:
    Type: AWS::SQS::Queue
    DependsOn: Topic
    Properties:
      QueueName: !Sub "${AWS::StackName}-${Topic.TopicName}-${!Literal}"
      DelaySeconds: !FindInMap [Period, !Ref Minutes, Seconds]
      Tags:
        - Key: k
          Value: !If [AlsoAlways, !GetAtt Topic.TopicName, !Ref "AWS::NoValue"]
        - Key: s
          Value: !Sub ["${X}", {X: !Ref Topic}]
"""

# Each bad template with a fragment its refusal must name.
SELF_TEST_BAD = [
    (
        "!Join inside Rules (template.yaml before this check)",
        """
Parameters:
  Subnets: {Type: CommaDelimitedList, Default: ""}
Rules:
  NeedsSubnets:
    Assertions:
      - Assert: !Not [!Equals [!Join ["", !Ref Subnets], ""]]
Resources:
  Topic: {Type: AWS::SNS::Topic}
""",
        "Rules.NeedsSubnets.Assertions[0].Assert.Fn::Not[0].Fn::Equals[0]: Fn::Join is not a rule function",
    ),
    (
        "Fn::Select in a RuleCondition",
        """
Parameters:
  Subnets: {Type: CommaDelimitedList}
Rules:
  R:
    RuleCondition: !Equals [!Select [0, !Ref Subnets], x]
    Assertions:
      - Assert: !Equals [a, a]
Resources:
  Topic: {Type: AWS::SNS::Topic}
""",
        "Rules.R.RuleCondition.Fn::Equals[0]: Fn::Select is not a rule function",
    ),
    (
        "a Ref to a resource inside Rules",
        """
Rules:
  R:
    Assertions:
      - Assert: !Equals [!Ref Topic, x]
Resources:
  Topic: {Type: AWS::SNS::Topic}
""",
        "Ref 'Topic' names no parameter",
    ),
    (
        "an undefined condition",
        """
Conditions:
  Known: !Equals [a, a]
Resources:
  Topic: {Type: AWS::SNS::Topic, Condition: Unknown}
""",
        "Resources.Topic.Condition: 'Unknown' is not in Conditions",
    ),
    (
        "Fn::If on an undefined condition",
        """
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !If [Missing, a, b]
""",
        "Fn::If names 'Missing'",
    ),
    (
        "a Ref to nothing",
        """
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Ref Nowhere
""",
        "Ref 'Nowhere' names no parameter, pseudo parameter or resource",
    ),
    (
        "a GetAtt of no resource",
        """
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !GetAtt Registry.Arn
""",
        "Fn::GetAtt Registry.Arn names no resource",
    ),
    (
        "a Sub variable of nothing",
        """
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !Sub "${AWS::StackName}-${Missing}"
""",
        "${Missing} names no parameter",
    ),
    (
        "a FindInMap key that is not there",
        """
Mappings:
  Period:
    "1": {Seconds: 60}
Resources:
  Topic:
    Type: AWS::SNS::Topic
    Properties:
      TopicName: !FindInMap [Period, "1", Minutes]
""",
        "Mappings.Period.1 has no key 'Minutes'",
    ),
]


def same_resource(name, first, second, first_path="A", second_path="B"):
    """Problems when resource `name` differs between two templates (its
    Condition aside: one template may deploy it conditionally)."""

    def body(template, path):
        resource = ((template or {}).get("Resources") or {}).get(name)
        if not isinstance(resource, dict):
            return None, [f"{path}: no resource {name}"]
        return {k: v for k, v in resource.items() if k != "Condition"}, []

    a, problems = body(first, first_path)
    b, more = body(second, second_path)
    problems += more
    if not problems and a != b:
        problems.append(f"{first_path} and {second_path} define {name} differently")
    return problems


def samconfig(config, read_template):
    """Problems of a samconfig's deploy environments: an override of no
    parameter of the environment's template (template_file, else
    template.yaml), or a parameter without a Default left out."""
    problems = []
    for env, sections in config.items():
        if not isinstance(sections, dict):
            continue
        deploy = (sections.get("deploy") or {}).get("parameters") or {}
        if not deploy:
            continue
        template_file = deploy.get("template_file", "template.yaml")
        parameters = (read_template(template_file).get("Parameters") or {})
        overrides = deploy.get("parameter_overrides", "")
        if isinstance(overrides, list):
            overrides = " ".join(overrides)
        given = {item.split("=", 1)[0] for item in overrides.split() if "=" in item}
        for key in sorted(given - set(parameters)):
            problems.append(f"[{env}.deploy.parameters] overrides {key}, not a parameter of {template_file}")
        for key, spec in parameters.items():
            if isinstance(spec, dict) and "Default" not in spec and key not in given:
                problems.append(f"[{env}.deploy.parameters] leaves out {key}, which {template_file} requires")
    return problems


def self_test():
    failures = []
    role = "Resources:\n  Role:\n    Type: AWS::IAM::Role\n    Condition: C\n    Properties: {Description: %s}\n"
    if same_resource("Role", load(role % "a"), load(role.replace("    Condition: C\n", "") % "a")):
        failures.append("--same-resource refused two equal roles (one with a Condition)")
    if not same_resource("Role", load(role % "a"), load(role % "b")):
        failures.append("--same-resource let two different roles pass")
    config = {"t": {"deploy": {"parameters": {"parameter_overrides": "A=1 Old=2"}}}}
    found = samconfig(config, lambda _: {"Parameters": {"A": {}, "B": {"Default": ""}, "C": {}}})
    for expected in ("overrides Old", "leaves out C"):
        if not any(expected in p for p in found):
            failures.append(f"--samconfig: expected a problem naming {expected!r}, got {found}")
    good = check(load(SELF_TEST_GOOD), "good")
    if good:
        failures.append("the good template was refused: " + "; ".join(good))
    for what, text, expected in SELF_TEST_BAD:
        found = check(load(text), "bad")
        if not any(expected in p for p in found):
            failures.append(f"{what}: expected a problem naming {expected!r}, got {found}")
    for failure in failures:
        print(f"check-template self-test: {failure}", file=sys.stderr)
    if failures:
        return 1
    print(f"check-template self-test: {len(SELF_TEST_BAD)} bad templates refused, the good one passed")
    return 0


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    if len(argv) == 4 and argv[0] == "--same-resource":
        name, first, second = argv[1:]
        with open(first, encoding="utf-8") as a, open(second, encoding="utf-8") as b:
            problems = same_resource(name, load(a.read()), load(b.read()), first, second)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return 1
        print(f"check-template: {name} is the same in {first} and {second}")
        return 0
    if len(argv) == 2 and argv[0] == "--samconfig":
        import os
        import tomllib

        with open(argv[1], "rb") as f:
            config = tomllib.load(f)
        base = os.path.dirname(os.path.abspath(argv[1]))

        def read_template(name):
            with open(os.path.join(base, name), encoding="utf-8") as t:
                return load(t.read())

        problems = samconfig(config, read_template)
        for problem in problems:
            print(f"{argv[1]}: {problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"check-template: {argv[1]}: every override names a parameter, none required is left out")
        return 0
    if not argv or any(a.startswith("-") for a in argv):
        print("usage: check-template.py TEMPLATE... | --self-test | --same-resource NAME A B | --samconfig FILE", file=sys.stderr)
        return 2
    problems = []
    for path in argv:
        with open(path, encoding="utf-8") as f:
            problems += check(load(f.read()), path)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"check-template: {', '.join(argv)}: no problem found")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
