"""Resolving the CloudFormation intrinsic functions a synthesized template uses.

Only what CDK templates of this project contain is supported; anything else is an error that
names the function, so a new construct cannot be run half-understood.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]+)\}")
# Fn::Sub's "${!Name}" is the literal text "${Name}".


# What Ref AWS::NoValue resolves to: the property or list item holding it is left out.
NO_VALUE: Any = object()


class UnresolvableError(Exception):
    """A value of the template cannot be resolved locally."""


@dataclass(frozen=True)
class Environment:
    """The pseudo parameters of the local "account"."""

    account: str = "123456789012"
    region: str = "eu-west-1"
    partition: str = "aws"
    stack_name: str = "local"
    url_suffix: str = "amazonaws.com"

    def pseudo(self) -> dict[str, Any]:
        return {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::NoValue": NO_VALUE,
        }


@dataclass
class Resolver:
    """Resolves values against the physical resources provisioned so far.

    ``refs`` maps a logical id to what ``Ref`` returns; ``attributes`` maps
    (logical id, attribute) to what ``Fn::GetAtt`` returns.
    """

    environment: Environment = field(default_factory=Environment)
    refs: dict[str, Any] = field(default_factory=dict)
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        """Return ``value`` with every intrinsic function replaced by its result."""
        if isinstance(value, list):
            return [r for r in (self.resolve(item) for item in value) if r is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (name, argument), *_ = value.items()
            handler = self._functions().get(name)
            if handler is not None:
                return handler(argument)
            if name.startswith("Fn::") or name == "Condition":
                raise UnresolvableError(f"the local runtime does not support {name}")
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _functions(self) -> Mapping[str, Callable[[Any], Any]]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Join": self._join,
            "Fn::Sub": self._sub,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
        }

    def _ref(self, name: str) -> Any:
        pseudo = self.environment.pseudo()
        if name in pseudo:
            return pseudo[name]
        if name not in self.refs:
            raise UnresolvableError(f"Ref to {name}, which is not provisioned (yet)")
        return self.refs[name]

    def _get_att(self, argument: Any) -> Any:
        logical_id, attribute = (
            argument.split(".", 1) if isinstance(argument, str) else self.resolve(argument)
        )
        key = (logical_id, attribute)
        if key not in self.attributes:
            raise UnresolvableError(f"Fn::GetAtt {logical_id}.{attribute} is not known locally")
        return self.attributes[key]

    def _join(self, argument: list[Any]) -> str:
        separator, items = argument
        return str(separator).join(str(item) for item in self.resolve(items))

    def _sub(self, argument: Any) -> str:
        template, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: self.resolve(value) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            literal, name = match.groups()
            if literal:
                return "${" + name + "}"
            if name in values:
                return str(values[name])
            if "." in name:
                return str(self._get_att(name))
            return str(self._ref(name))

        return _SUB_VARIABLE.sub(replace, template)

    def _select(self, argument: list[Any]) -> Any:
        index, items = self.resolve(argument)
        return items[int(index)]

    def _split(self, argument: list[Any]) -> list[str]:
        separator, text = self.resolve(argument)
        return str(text).split(separator)


def references(value: Any) -> set[str]:
    """Logical ids a value refers to through Ref, Fn::GetAtt or Fn::Sub (for ordering)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str) and not item.startswith("AWS::"):
                found.add(item)
            elif key == "Fn::GetAtt":
                target = item.split(".", 1)[0] if isinstance(item, str) else item[0]
                if isinstance(target, str):
                    found.add(target)
            elif key == "Fn::Sub":
                text, variables = (item, {}) if isinstance(item, str) else item
                for literal, name in _SUB_VARIABLE.findall(text):
                    # Local variables of the Sub and pseudo parameters are not resources.
                    if not literal and name not in variables and not name.startswith("AWS::"):
                        found.add(name.split(".", 1)[0])
                found |= references(variables)
            else:
                found |= references(item)
    return found
