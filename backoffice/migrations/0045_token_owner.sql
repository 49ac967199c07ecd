-- Every API token answers to a person (issue 22 finding 3). A token made by another token recorded
-- created_by = 'token:<name>', which is never a disabled user, so it outlived the admin behind it and
-- could mint more. owner_user_id is the human at the root of the chain: the user who made the token,
-- or the owner of the token that made it. A token works only while its owner is enabled; tokens
-- that trace to no one (made from the command line before this) stop working until an admin
-- issues new ones with `paygo users token ... --owner <user>`.
alter table api_tokens add column owner_user_id bigint references staff_users (id);

update api_tokens t set owner_user_id = s.id from staff_users s where s.username = t.created_by;
do $$
begin
    loop  -- down each chain: a token made by a token takes that token's owner
        update api_tokens t set owner_user_id = (
                select p.owner_user_id from api_tokens p
                 where t.created_by = 'token:' || p.name and p.created_at <= t.created_at
                   and p.owner_user_id is not null
                 order by p.created_at desc limit 1)
         where t.owner_user_id is null and t.created_by like 'token:%'
           and exists (select from api_tokens p where t.created_by = 'token:' || p.name
                        and p.created_at <= t.created_at and p.owner_user_id is not null);
        exit when not found;
    end loop;
end $$;
create index api_tokens_owner on api_tokens (owner_user_id);
