"""The hall hub: the MQTT contract, the hub service, the embedded broker, counter commands."""
