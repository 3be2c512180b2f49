"""What a diffusion *is*: noise schedules (discrete VP), Gaussian interpolants (continuous paths), the forward
process q(x_t | x_0), and the process objects that answer every process question (samplers, defaults,
objective, conversions, metadata) through one registry."""

from toydiff.processes import forward, interpolants, schedules
from toydiff.processes.base import CheckpointMismatch, Process, process_of
from toydiff.processes.flow import EPS_T_MAX, FLOW_TIME_SCALE, FlowObjective, InterpolantProcess
from toydiff.processes.registry import (PROCESSES, all_methods, as_process, objective_from_meta, process_from_dict,
                                       register)
from toydiff.processes.vp import VPObjective, VPProcess

__all__ = ["forward", "interpolants", "schedules", "Process", "VPProcess", "InterpolantProcess", "VPObjective",
           "FlowObjective", "PROCESSES", "register", "process_from_dict", "objective_from_meta", "process_of",
           "all_methods", "as_process", "CheckpointMismatch", "FLOW_TIME_SCALE", "EPS_T_MAX"]
