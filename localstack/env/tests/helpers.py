"""Puts localstack/env on the import path, so the tests import `drillenv` as envctl does."""

import os
import sys

ENV = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(ENV))
sys.path.insert(0, ENV)
