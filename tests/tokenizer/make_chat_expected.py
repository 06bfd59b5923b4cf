#!/usr/bin/env python3
"""Writes chat_expected.json: the strings the Jinja chat templates in the reference
tokenizer_config.json files render (HF's settings: trim_blocks, lstrip_blocks,
sandboxed), for the conversations below. test_chat_template.cpp renders the same
conversations with the C++ renderers and compares. Needs python3-jinja2.

Run: python3 tests/tokenizer/make_chat_expected.py /work/shared/reference > tests/tokenizer/chat_expected.json
"""
import json
import sys

import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

reference = sys.argv[1]
CONVERSATIONS = {
    "system_and_user": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi there"}],
    "think_dropped_before_last_query": [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"},
        {"role": "user", "content": "And 3+3?"}],
    "assistant_last_keeps_think": [
        {"role": "user", "content": "Q"}, {"role": "assistant", "content": "<think>\nr1\n</think>\n\nA"}],
    "reasoning_content_field": [
        {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1", "reasoning_content": "why"},
        {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2", "reasoning_content": "\nbecause\n"}],
    "tool_turns": [
        {"role": "user", "content": "weather?"}, {"role": "assistant", "content": "calling"},
        {"role": "tool", "content": "sunny"}, {"role": "tool", "content": "20C"},
        {"role": "assistant", "content": "It is sunny."}],
    "system_in_the_middle": [
        {"role": "user", "content": "a"}, {"role": "system", "content": "be nice"},
        {"role": "user", "content": " padded  \n"}],
    "unicode_whitespace_trim": [{"role": "user", "content": "\u3000 \t hi \u00e9\n\u00a0"}],
    "empty": [],
}
VARIANTS = [("gen", {"add_generation_prompt": True}), ("nogen", {"add_generation_prompt": False}),
            ("nothink", {"add_generation_prompt": True, "enable_thinking": False})]


def render(family, messages, kwargs):
    config = json.load(open(f"{reference}/tokenizers/{family}/tokenizer_config.json"))
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    template = env.from_string(config["chat_template"])
    try:
        return template.render(messages=messages, bos_token=config.get("bos_token") or "", **kwargs)
    except jinja2.exceptions.UndefinedError:
        return None  # the template fails (Qwen3's reads messages[0]); the renderer must too


cases = []
for family in ["qwen3", "llama3"]:
    for name, messages in CONVERSATIONS.items():
        if family == "llama3":  # its template reads role and content only
            messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        for variant, kwargs in VARIANTS:
            cases.append({"family": family, "name": f"{name}/{variant}", "messages": messages,
                          "add_generation_prompt": kwargs["add_generation_prompt"],
                          "enable_thinking": kwargs.get("enable_thinking"),
                          "expected": render(family, messages, kwargs)})  # null: an error
json.dump({"cases": cases}, sys.stdout, indent=1, ensure_ascii=False)
print()
