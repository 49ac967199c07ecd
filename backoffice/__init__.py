"""Back office: the system of record (registry, money, service) and the platform's composition root."""
