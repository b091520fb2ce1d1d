"""The host around the appliance: systemd notify, state files, the local control socket."""
