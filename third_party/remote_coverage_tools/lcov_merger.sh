#!/bin/sh
echo "coverage is not collected in this offline build" >&2
exit 0
