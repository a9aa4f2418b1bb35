"""Docker Swarm as a target: the compose model rendered as swarm services (``convert``), put
on a swarm in dependency order (``deploy``) and managed as a stack (``stack``)."""
