"""Traces as data and the rules they are judged by.

`model` parses OTLP JSON into spans; `semconv` says what a span is (publish, consume, HTTP
status); `tree` builds the parent/child graph; `expectation` is what an unbroken flow of a
target looks like; `rules` turns spans into `findings`; `flow` assembles a flow from linked
traces; `render` draws a tree with its gaps marked.
"""
