"""The host around the appliance: atomic files and JSON records, boot id, clock sync and SoC
temperature, systemd notify, the local control socket, the allocator's settings."""
