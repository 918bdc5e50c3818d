"""netstitch: declarative container networking. The pure core (validate, model, compile, plan) has no kernel
dependency; drivers (netlink, nft, docker) touch a host; the engine ties them together for one host."""
