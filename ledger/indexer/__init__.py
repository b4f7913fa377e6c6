"""On-chain events become CRM rows: raw logs decoded by slicing, reorg-safe and crash-safe."""
