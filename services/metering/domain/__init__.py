"""The pure core of metering: plain data in, plain data out, no I/O."""
