"""Rating pads (评价器) and the staff's call keys on them: drivers, protocol, bridge to the hub, simulators."""
