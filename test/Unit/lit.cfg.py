# -*- Python -*-
# lit configuration of Rotor's GoogleTest unit tests: one lit test per
# GoogleTest case.

import os

import lit.formats

config.name = "Rotor-Unit"
config.suffixes = []
config.test_exec_root = os.path.join(config.rotor_obj_root, "unittests")
config.test_source_root = config.test_exec_root
config.test_format = lit.formats.GoogleTest(".", "Tests")
