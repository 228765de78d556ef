"""Collects the storage contract suite, shipped in ``codeq.testing.contract``."""

from codeq.testing.contract import *
from codeq.testing.contract_delivery import *
