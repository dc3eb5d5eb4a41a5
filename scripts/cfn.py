"""Just enough of CloudFormation to read what a template sets: parameters with
their defaults, conditions, Ref, GetAtt, Sub, If, Equals, Not, And, Or.

The image smoke tests give each container the environment the template gives it,
so a variable added to dagster.yaml but forgotten in a template fails CI. Resources
the environment refers to are given by the caller (a bucket name, a role ARN); an
unknown one is an error, not a guess. (Hand-written: cfn-lint validates templates
but does not evaluate them, and moto's CloudFormation would need every resource
type of the templates.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

NO_VALUE = object()


class _Loader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _tag)


class Stack:
    def __init__(
        self,
        template: Path,
        parameters: dict[str, str],
        resources: dict[str, str],
        region: str,
        account: str,
    ) -> None:
        self.template = yaml.load(template.read_text(), Loader=_Loader)  # noqa: S506 - SafeLoader subclass
        declared = self.template.get("Parameters", {})
        unknown = set(parameters) - set(declared)
        if unknown:
            raise KeyError(f"{template.name} has no parameters {sorted(unknown)}")
        self.parameters = {name: str(spec.get("Default", "")) for name, spec in declared.items()} | parameters
        self.resources = resources
        self.pseudo = {"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": "aws"}

    def resource(self, name: str, *path: str | int) -> Any:
        """A part of a resource's definition (e.g. a container's Environment), evaluated."""
        node = self.template["Resources"][name]
        for step in path:
            node = node[step]
        return self.evaluate(node)

    def condition(self, name: str) -> bool:
        return bool(self.evaluate(self.template["Conditions"][name]))

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return self.resources[name]
        raise KeyError(f"the template refers to resource {name}: give its value")

    def _get_att(self, value: str | list[str]) -> Any:
        name = value if isinstance(value, str) else ".".join(value)
        if name not in self.resources:
            raise KeyError(f"the template refers to {name}: give its value")
        return self.resources[name]

    def _sub(self, value: str | list[Any]) -> str:
        text, extra = (value, {}) if isinstance(value, str) else (value[0], self.evaluate(value[1]))

        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in extra:
                return str(extra[name])
            return str(self._get_att(name) if "." in name else self._ref(name))

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def evaluate(self, node: Any) -> Any:
        if isinstance(node, list):
            return [value for value in (self.evaluate(item) for item in node) if value is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            [(key, value)] = node.items()
            if key == "Ref":
                return self._ref(value)
            if key == "Fn::GetAtt":
                return self._get_att(value)
            if key == "Fn::Sub":
                return self._sub(value)
            if key == "Fn::If":
                name, when_true, when_false = value
                return self.evaluate(when_true if self.condition(name) else when_false)
            if key == "Fn::Equals":
                left, right = (self.evaluate(item) for item in value)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.evaluate(value[0])
            if key == "Fn::And":
                return all(self.evaluate(item) for item in value)
            if key == "Fn::Or":
                return any(self.evaluate(item) for item in value)
            if key == "Condition" and isinstance(value, str):
                return self.condition(value)
        evaluated = {key: self.evaluate(value) for key, value in node.items()}
        return {key: value for key, value in evaluated.items() if value is not NO_VALUE}
