"""Resolving the intrinsic functions of a synthesized template against local resources."""

from __future__ import annotations

from typing import Any

import pytest

from payment_local.intrinsics import Environment, Resolver, UnresolvableError, references

QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/T-Queue"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:T-Queue"
TABLE = "T-Table"
STREAM_ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/T-Table/stream/2026-01-01T00:00:00"


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(
        Environment(stack_name="T"),
        refs={"Queue": QUEUE_URL, "Table": TABLE, "Bus": "T-Bus"},
        attributes={
            ("Queue", "Arn"): QUEUE_ARN,
            ("Table", "StreamArn"): STREAM_ARN,
            ("Table", "Arn"): "arn:aws:dynamodb:eu-west-1:123456789012:table/T-Table",
        },
    )


@pytest.mark.parametrize(
    ("pseudo", "expected"),
    [
        ("AWS::AccountId", "123456789012"),
        ("AWS::Region", "eu-west-1"),
        ("AWS::Partition", "aws"),
        ("AWS::StackName", "T"),
        ("AWS::URLSuffix", "amazonaws.com"),
    ],
)
def test_ref_to_a_pseudo_parameter(resolver: Resolver, pseudo: str, expected: str) -> None:
    assert resolver.resolve({"Ref": pseudo}) == expected


def test_pseudo_parameters_follow_the_environment() -> None:
    resolver = Resolver(Environment(account="111122223333", region="us-east-2"))
    assert resolver.resolve({"Ref": "AWS::AccountId"}) == "111122223333"
    assert resolver.resolve({"Ref": "AWS::Region"}) == "us-east-2"


def test_ref_to_a_recorded_resource(resolver: Resolver) -> None:
    assert resolver.resolve({"Ref": "Queue"}) == QUEUE_URL


def test_get_att_in_list_and_string_form(resolver: Resolver) -> None:
    assert resolver.resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == QUEUE_ARN
    assert resolver.resolve({"Fn::GetAtt": "Table.StreamArn"}) == STREAM_ARN


def test_get_att_of_an_unknown_attribute_raises_naming_it(resolver: Resolver) -> None:
    with pytest.raises(UnresolvableError, match=r"Queue\.QueueName"):
        resolver.resolve({"Fn::GetAtt": ["Queue", "QueueName"]})


def test_join(resolver: Resolver) -> None:
    assert resolver.resolve({"Fn::Join": ["-", ["a", {"Ref": "Bus"}, "b"]]}) == "a-T-Bus-b"
    assert resolver.resolve({"Fn::Join": ["", []]}) == ""


def test_sub_string_form(resolver: Resolver) -> None:
    value = {"Fn::Sub": "${AWS::Region}/${Bus}/${Queue.Arn}/${AWS::AccountId}"}
    assert resolver.resolve(value) == f"eu-west-1/T-Bus/{QUEUE_ARN}/123456789012"


def test_sub_list_form_with_local_variables(resolver: Resolver) -> None:
    value = {
        "Fn::Sub": [
            "${Prefix}:${Name}@${AWS::Region} -> ${Queue.Arn}",
            {"Prefix": "arn", "Name": {"Ref": "Table"}},
        ]
    }
    assert resolver.resolve(value) == f"arn:T-Table@eu-west-1 -> {QUEUE_ARN}"


def test_sub_local_variable_shadows_a_resource_of_the_same_name(resolver: Resolver) -> None:
    assert resolver.resolve({"Fn::Sub": ["${Queue}", {"Queue": "local"}]}) == "local"


def test_select_and_split(resolver: Resolver) -> None:
    # CDK takes a queue's name out of its ARN this way.
    value = {"Fn::Select": [5, {"Fn::Split": [":", {"Fn::GetAtt": ["Queue", "Arn"]}]}]}
    assert resolver.resolve(value) == "T-Queue"
    assert resolver.resolve({"Fn::Select": ["1", ["a", "b", "c"]]}) == "b"


def test_table_arn_as_cdk_writes_it(resolver: Resolver) -> None:
    value = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":dynamodb:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":table/",
                {"Ref": "Table"},
            ],
        ]
    }
    assert resolver.resolve(value) == "arn:aws:dynamodb:eu-west-1:123456789012:table/T-Table"


def test_nested_values_are_resolved_everywhere(resolver: Resolver) -> None:
    properties: dict[str, Any] = {
        "QueueUrl": {"Ref": "Queue"},
        "Statement": [
            {"Resource": [{"Fn::GetAtt": ["Table", "Arn"]}, {"Fn::Sub": "${Table.Arn}/index/*"}]}
        ],
        "Plain": {"A": 1, "B": [True, None, "x"]},
    }
    table_arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/T-Table"
    assert resolver.resolve(properties) == {
        "QueueUrl": QUEUE_URL,
        "Statement": [{"Resource": [table_arn, f"{table_arn}/index/*"]}],
        "Plain": {"A": 1, "B": [True, None, "x"]},
    }


def test_an_unsupported_function_is_named(resolver: Resolver) -> None:
    with pytest.raises(UnresolvableError, match=r"Fn::If"):
        resolver.resolve({"Properties": {"X": {"Fn::If": ["IsProd", "a", "b"]}}})


def test_a_condition_is_not_silently_ignored(resolver: Resolver) -> None:
    with pytest.raises(UnresolvableError, match="Condition"):
        resolver.resolve({"Condition": "IsProd"})


def test_ref_to_something_not_provisioned_raises(resolver: Resolver) -> None:
    with pytest.raises(UnresolvableError, match="Missing"):
        resolver.resolve({"Ref": "Missing"})
    with pytest.raises(UnresolvableError, match="Missing"):
        resolver.resolve({"Fn::Sub": "prefix-${Missing}"})


def test_sub_escaped_literal(resolver: Resolver) -> None:
    assert resolver.resolve({"Fn::Sub": "${!Literal}-${AWS::Region}"}) == "${Literal}-eu-west-1"


def test_references_finds_ref_get_att_and_sub_targets() -> None:
    value = {
        "A": {"Ref": "Queue"},
        "B": [{"Fn::GetAtt": ["Table", "StreamArn"]}, {"Fn::GetAtt": "Key.Arn"}],
        "C": {"Fn::Sub": "${Bus}-${Role.Arn}-${AWS::Region}"},
        "D": {"Fn::Join": ["", [{"Ref": "AWS::Partition"}, {"Ref": "Topic"}]]},
    }
    assert references(value) == {"Queue", "Table", "Key", "Bus", "Role", "Topic"}


def test_references_ignores_pseudo_parameters_and_sub_local_variables() -> None:
    value = {
        "Fn::Sub": [
            "${AWS::AccountId}:${Local}:${Bucket}",
            {"Local": {"Fn::GetAtt": ["Function", "Arn"]}},
        ]
    }
    assert references(value) == {"Bucket", "Function"}
    assert references({"Ref": "AWS::NoValue"}) == set()


def test_references_keeps_a_resource_named_like_the_local_variable_it_fills() -> None:
    value = {"Fn::Sub": ["${Queue}/x", {"Queue": {"Ref": "Queue"}}]}
    assert references(value) == {"Queue"}
