"""Shared helpers of the video workflow.

Standard library only, so that every rule environment can import it.
"""
